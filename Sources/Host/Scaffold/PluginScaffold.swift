import CBraneSystem
import Foundation
import SystemPackage

/// The files of a new plugin folder that builds outside this repository: C against the installed
/// header (`pkg-config --cflags brane-plugin`), Swift as a small package whose one dependency is
/// the installed plugin kit. Every folder carries a manifest that validates, a Makefile
/// (`make` builds the library into the folder, `make test` tests it) and `test.sh`, which runs
/// the plugin in its real sandbox through `brane` and checks its answers.
public struct PluginScaffold: Sendable {
    public enum Language: String, CaseIterable, Sendable { case c, swift }
    public enum Kind: String, CaseIterable, Sendable { case synapse, sensor, specialist, scanner }

    public struct File: Sendable {
        public var path: String
        public var contents: String
        public var executable = false
    }

    public let id: String
    public let language: Language
    public let kind: Kind
    /// The type, target and library stem: `com.example.word-count` → `WordCount`.
    public let name: String

    public var libraryName: String { "lib\(name).so" }

    /// Names the generated Swift would collide with: keywords that capitalise to themselves, the
    /// kit's modules and types, and the modules the templates import.
    static let reservedNames: Set<String> = [
        "Self", "Type", "Protocol", "Any", "String", "Int", "Double", "Bool", "Array", "Dictionary", "Optional", "Error",
        "PluginHost", "PluginError", "PluginKind", "BranePlugin", "JSONValue", "BranePluginKit", "BranePluginCodable",
        "BraneJSON", "PluginABI", "Glibc", "Foundation", "FoundationEssentials", "XCTest", "Swift", "PackageDescription",
    ]

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public init(id: String, language: Language, kind: Kind) throws {
        if let problem = PluginID.problem(id) { throw Problem(description: "plugin id: \(problem)") }
        let stem = id.split(separator: ".").last.map(String.init) ?? id
        var name = stem.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        if name.first?.isNumber ?? true { name = "Plugin" + name }
        // A type, target and module of its own: never a Swift keyword or a name the code uses.
        if Self.reservedNames.contains(name) { name += "Plugin" }
        self.id = id
        self.language = language
        self.kind = kind
        self.name = name
    }

    /// The folder's files; `kit` is the plugin kit package a Swift plugin depends on.
    public func files(kit: String?) throws -> [File] {
        var files = [File(path: "manifest.yaml", contents: manifest), File(path: "test.sh", contents: testScript, executable: true),
                     File(path: "README.md", contents: readme), File(path: ".gitignore", contents: "/.build/\n/\(libraryName)\n")]
        switch language {
        case .c:
            files += [File(path: "\(name).c", contents: cSource), File(path: "Makefile", contents: cMakefile)]
        case .swift:
            guard let kit else { throw Problem(description: "a Swift plugin needs the plugin kit: pass --kit DIR") }
            if let bad = kit.unicodeScalars.first(where: { $0 == "\"" || $0 == "\\" || $0.properties.generalCategory == .control }) {
                throw Problem(description: "the kit path \(UntrustedText.sanitized(kit, limit: 200)) holds \(bad.escaped(asASCII: true)), which a Package.swift string cannot")
            }
            files += [File(path: "Package.swift", contents: swiftPackage(kit: kit)),
                      File(path: "Sources/\(name)/\(name).swift", contents: swiftSource),
                      File(path: "Tests/\(name)Tests/\(name)Tests.swift", contents: swiftTests),
                      File(path: "Makefile", contents: swiftMakefile)]
        }
        return files
    }

    /// Writes the folder at `directory`, whose parent must exist and which must not exist or be an
    /// empty directory (not a link). Everything is written first into a private staging directory
    /// (mkdtemp: an unguessable name, mode 0700, so no one else can plant a link or a file in it),
    /// then moved into place without replacing anything (RENAME_NOREPLACE): the folder itself
    /// when it is new, its entries one by one when an empty directory was named. On failure the
    /// staging directory is removed; a new folder is then untouched, and only another writer
    /// racing in an empty one could leave it partly filled.
    public static func write(_ files: [File], to directory: String) throws {
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let shown = UntrustedText.sanitized(target.path, limit: 300)
        var info = stat()
        let exists = lstat(target.path, &info) == 0
        if exists {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw Problem(description: "\(shown) exists and is not a directory (a link is not followed); choose another --directory")
            }
            guard ((try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? ["?"]).isEmpty else {
                throw Problem(description: "\(shown) is not empty; choose another --directory")
            }
            // Filled in place, so it must be ours alone: in another user's directory they could
            // swap the staging directory or the Makefile that `make` then runs as us.
            guard info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
                throw Problem(description: "\(shown) belongs to another user or others may write in it; name a directory of your own")
            }
        }
        let home = exists ? target.path : target.deletingLastPathComponent().path
        var parent = stat()
        guard stat(home, &parent) == 0, (parent.st_mode & S_IFMT) == S_IFDIR else {
            throw Problem(description: "the directory \(UntrustedText.sanitized(home, limit: 300)) does not exist; create it first")
        }
        // A directory others may write in keeps our staging directory ours only when it is sticky (/tmp).
        guard exists || parent.st_mode & 0o022 == 0 || parent.st_mode & S_ISVTX != 0 else {
            throw Problem(description: "others may write in \(UntrustedText.sanitized(home, limit: 300)) and it is not sticky; create the plugin in a directory of your own")
        }
        var template = Array("\(home)/.brane-new-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw Problem(description: "cannot write in \(UntrustedText.sanitized(home, limit: 300)): \(String(cString: strerror(errno)))")
        }
        let staging = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: staging) }  // empty or gone once moved
        for file in files {
            let path = "\(staging)/\(file.path)"
            try makeDirectories(URL(fileURLWithPath: path).deletingLastPathComponent().path, under: staging)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, file.executable ? 0o755 : 0o644)
            guard fd >= 0 else { throw Problem(description: "cannot write \(file.path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            do { _ = try FileDescriptor(rawValue: fd).writeAll(Array(file.contents.utf8)) } catch {
                throw Problem(description: "cannot write \(file.path): \(error)")
            }
            fchmod(fd, file.executable ? 0o755 : 0o644)  // not narrowed by the umask
        }
        let moves = exists ? try FileManager.default.contentsOfDirectory(atPath: staging).map { ("\(staging)/\($0)", "\(target.path)/\($0)") }
                           : [(staging, target.path)]
        if !exists { chmod(staging, 0o755) }
        for (from, to) in moves where brane_rename_noreplace(from, to) != 0 {
            throw Problem(description: "cannot create \(UntrustedText.sanitized(to, limit: 300)): \(String(cString: strerror(errno)))")
        }
    }

    /// `mkdir -p` inside the private staging directory.
    private static func makeDirectories(_ path: String, under root: String) throws {
        guard path != root, !FileManager.default.fileExists(atPath: path) else { return }
        try makeDirectories(URL(fileURLWithPath: path).deletingLastPathComponent().path, under: root)
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw Problem(description: "cannot create \(path.dropFirst(root.count + 1)): \(String(cString: strerror(errno)))")
        }
    }

    // MARK: - What each kind declares and answers

    private var manifest: String {
        let (description, kindSection): (String, String) = switch kind {
        case .synapse: ("Counts the words in a text.", """
            tools:
              - name: count_words
                description: Count the words in a text.
                inputSchema:
                  type: object
                  properties: {text: {type: string, maxLength: 100000}}
                  required: [text]
                  additionalProperties: false
            """)
        case .sensor: ("Load averages, read from /proc/loadavg.", """
            filesystem:
              read: [/proc/loadavg]
            sensor:
              interval: 10s
              thresholds:
                load.1m: 0.5
            """)
        case .specialist: ("Mean of a series of values, and an alert for any value over 100.", """
            specialist:
              domains: [example]
              consumes: [example.values]
              rules:
                - id: over-100
                  description: Alerts for an event whose value is over 100.
            """)
        case .scanner: ("The machine's hostname, as an asset.", """
            filesystem:
              read: [/etc/hostname]
            scanner:
              targets: [localhost]
            """)
        }
        return """
            apiVersion: brane.dev/v1
            kind: \(kind.rawValue)
            id: \(id)
            version: 0.1.0
            abi: "1.0"
            library: \(libraryName)
            description: \(description)
            privacy:
              tier: 0                 # no network: the sandbox has no socket syscalls at all
            resources: {memory: 64MiB, callTimeout: 2s, maxOutput: 16KiB}
            \(kindSection)

            """
    }

    /// The sandboxed checks: each kind's call through `brane`, and one refusal.
    private var testScript: String {
        let checks = switch kind {
        case .synapse: """
            out=$("$brane" tool call . count_words --args '{"text":"rest, then run"}')
            expect '"words": 3'
            # Arguments that break the inputSchema are refused before the plugin runs (exit 2).
            if "$brane" tool call . count_words --args '{"txt":"x"}' 2>/dev/null; then fail "bad arguments were accepted"; fi
            """
        case .sensor: """
            out=$("$brane" plugin run . sensor/sample)
            expect '"1m":'
            """
        case .specialist: """
            out=$(echo '{"values":[90,100,110]}' | "$brane" specialist consult . --input -)
            expect '"mean": 100'
            printf '%s\\n' '{"value":50}' '{"value":120}' > "$scratch/events.jsonl"
            out=$("$brane" specialist feed . --events "$scratch/events.jsonl")
            expect 'over-100'
            """
        case .scanner: """
            out=$("$brane" plugin run . scanner/scan)
            expect '"kind": "host"'
            """
        }
        return """
            #!/bin/sh
            # Runs \(id) in its real sandbox through brane and checks its answers.
            # BRANE names the brane to use (default: the one on PATH).
            set -eu
            cd "$(dirname "$0")"
            brane=${BRANE:-brane}
            scratch=$(mktemp -d)
            trap 'rm -rf "$scratch"' EXIT
            fail() { echo "test.sh: FAIL: $1" >&2; exit 1; }
            expect() { case "$out" in *"$1"*) ;; *) fail "expected $1 in: $out" ;; esac; }

            # The manifest validates, and the sandbox it gets is printed with `brane plugin inspect .`.
            "$brane" plugin inspect . >/dev/null
            \(checks)
            echo "test.sh: \(id) passed in its sandbox"

            """
    }

    private var readme: String {
        let build = language == .c ? "cc, make and pkg-config" : "Swift and make"
        return """
            # \(id)

            A Brane \(kind.rawValue) plugin, written in \(language == .c ? "C" : "Swift"). Needs \(build), and Brane installed.

                make          # builds \(libraryName) into this folder
                make test     # \(language == .swift ? "swift test, then " : "")test.sh: runs it in its real sandbox through brane
                brane plugin inspect .    # the exact sandbox it gets

            Publish and install it as docs/plugins.md of Brane shows (`brane market publish .`).

            """
    }

    // MARK: - C

    private var cMakefile: String {
        """
        # Builds \(libraryName) against the installed Brane ABI header (pkg-config brane-plugin).
        # Brane under a prefix of your own: PKG_CONFIG_PATH=<prefix>/lib/pkgconfig make
        CFLAGS ?= -O2 -Wall -Wextra
        BRANE_CFLAGS := $(shell pkg-config --cflags brane-plugin 2>/dev/null)
        ifeq ($(BRANE_CFLAGS),)
        $(error pkg-config cannot find brane-plugin: install Brane, or set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig)
        endif

        \(libraryName): \(name).c
        \t$(CC) -shared -fPIC $(CFLAGS) $(BRANE_CFLAGS) -o $@ $<

        test: \(libraryName)
        \t./test.sh

        clean:
        \trm -f \(libraryName)

        .PHONY: test clean

        """
    }

    private var cSource: String {
        let (cKind, includes, body): (String, String, String) = switch kind {
        case .synapse: ("BRANE_KIND_SYNAPSE", "#include <ctype.h>\n", """
            /* input is {"name":"count_words","arguments":{"text":"..."}}, already checked against the
             * manifest's inputSchema by the host. Counting words needs no JSON parser: count the runs of
             * letters and digits inside the text value (an escape such as \\n counts as a letter;
             * any non-ASCII UTF-8 byte is taken for a letter, so "héllo wörld" is two words). */
            static int answer(const char *method, const char *input, char **reply) {
                if (strcmp(method, "tools/call") != 0) return fail(reply, "unknown method; this plugin answers tools/call");
                const char *text = strstr(input, "\\"text\\":\\"");
                if (!text) return fail(reply, "no text argument");
                text += 8;
                long words = 0;
                int inside = 0;
                for (const char *p = text; *p && *p != '"'; p++) {
                    if (*p == '\\\\' && p[1]) p++;
                    int letter = isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80; /* UTF-8: a letter */
                    if (letter && !inside) words++;
                    inside = letter;
                }
                return reply_with(reply, "{\\"words\\":%ld}", words);
            }
            """)
        case .sensor: ("BRANE_KIND_SENSOR", "", """
            /* A reading is a JSON object of numbers; the manifest's thresholds name them by path. */
            static int answer(const char *method, const char *input, char **reply) {
                (void)input;
                if (strcmp(method, "sensor/sample") != 0) return fail(reply, "unknown method; this sensor answers sensor/sample");
                FILE *file = fopen("/proc/loadavg", "r");
                double one = 0, five = 0, fifteen = 0;
                int read = file ? fscanf(file, "%lf %lf %lf", &one, &five, &fifteen) : 0;
                if (file) fclose(file);
                if (read != 3) return fail(reply, "cannot read /proc/loadavg");
                return reply_with(reply, "{\\"load\\":{\\"1m\\":%.2f,\\"5m\\":%.2f,\\"15m\\":%.2f}}", one, five, fifteen);
            }
            """)
        case .specialist: ("BRANE_KIND_SPECIALIST", "", """
            /* Where the value of the first "key" starts in input (spaces around ':' skipped), or NULL.
             * A deliberately small reader for a template: it takes the first such key at any depth.
             * For real input use a JSON parser (com.brane.medterms lets SQLite's json functions do it). */
            static const char *value_of(const char *input, const char *key) {
                char quoted[64];
                snprintf(quoted, sizeof quoted, "\\"%s\\"", key);
                const char *at = strstr(input, quoted);
                if (!at) return NULL;
                at += strlen(quoted);
                while (*at == ' ' || *at == '\\t' || *at == '\\n' || *at == '\\r') at++;
                if (*at != ':') return NULL;
                at++;
                while (*at == ' ' || *at == '\\t' || *at == '\\n' || *at == '\\r') at++;
                return at;
            }

            /* The number that starts at text, or NAN. Input may be any bytes, even hostile: strtod
             * reads at most one number, and invoke() hands answer() a NUL-terminated copy. */
            static double number_at(const char *text) {
                if (!text) return NAN;
                char *stop;
                double value = strtod(text, &stop);
                return stop == text ? NAN : value;
            }

            /* specialist/consult: {"values":[...]} -> {"mean": m, "count": n}.
             * specialist/event: {"value": v} -> {"alerts": [...]}, one alert when v > 100. The answer
             * follows from the event alone, so replaying events into a new instance is safe. */
            static int answer(const char *method, const char *input, char **reply) {
                if (strcmp(method, "specialist/consult") == 0) {
                    const char *p = value_of(input, "values");
                    if (!p || *p != '[') return fail(reply, "expected an object with a values array");
                    p++;
                    double sum = 0;
                    long count = 0;
                    while (*p && *p != ']') {
                        char *stop;
                        double value = strtod(p, &stop);
                        if (stop == p || !isfinite(value)) return fail(reply, "values must be finite numbers");
                        sum += value;
                        count++;
                        p = stop;
                        while (*p == ',' || *p == ' ' || *p == '\\n' || *p == '\\r' || *p == '\\t') p++;
                    }
                    if (count == 0) return fail(reply, "values is empty");
                    double mean = sum / (double)count;
                    if (!isfinite(mean)) return fail(reply, "the mean of these values is out of range");
                    return reply_with(reply, "{\\"mean\\":%.17g,\\"count\\":%ld}", mean, count);
                }
                if (strcmp(method, "specialist/event") == 0) {
                    double value = number_at(value_of(input, "value"));
                    if (!isfinite(value)) return fail(reply, "expected an object with a numeric value");
                    if (value <= 100) return reply_with(reply, "{\\"alerts\\":[]}");
                    return reply_with(reply, "{\\"alerts\\":[{\\"rule\\":\\"over-100\\",\\"message\\":\\"value %.17g is over 100\\"}]}", value);
                }
                return fail(reply, "unknown method; this specialist answers specialist/consult and specialist/event");
            }
            """)
        case .scanner: ("BRANE_KIND_SCANNER", "#include <ctype.h>\n", """
            /* A scan answers {"assets": [{"kind", "key", "name", "properties"}]}; the host keeps each
             * asset's history by kind and key. */
            static int answer(const char *method, const char *input, char **reply) {
                (void)input;
                if (strcmp(method, "scanner/scan") != 0) return fail(reply, "unknown method; this scanner answers scanner/scan");
                char name[256] = "";
                FILE *file = fopen("/etc/hostname", "r");
                if (!file || !fgets(name, sizeof name, file)) {
                    if (file) fclose(file);
                    return fail(reply, "cannot read /etc/hostname");
                }
                fclose(file);
                /* Keep what is safe inside a JSON string without escaping. */
                size_t length = 0;
                for (const char *p = name; *p && (isalnum((unsigned char)*p) || *p == '-' || *p == '.'); p++) length++;
                name[length] = 0;
                return reply_with(reply, "{\\"assets\\":[{\\"kind\\":\\"host\\",\\"key\\":\\"%s\\",\\"name\\":\\"%s\\",\\"properties\\":{}}]}", name, name);
            }
            """)
        }
        return """
            /* \(id): a Brane \(kind.rawValue) plugin in C. The whole contract is <brane_plugin.h>. */
            #define _GNU_SOURCE /* vasprintf */
            #include <brane_plugin.h>
            \(includes)#include <math.h>
            #include <stdarg.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>

            static const brane_host_api *host;

            static int init(const brane_host_api *api) {
                host = api;
                return BRANE_OK;
            }

            /* Formats an answer into a buffer the host hands back to release(). */
            static int reply_with(char **reply, const char *format, ...) {
                va_list arguments;
                va_start(arguments, format);
                int length = vasprintf(reply, format, arguments);
                va_end(arguments);
                return length < 0 ? BRANE_ERROR : BRANE_OK;
            }

            /* An error answer: BRANE_ERROR with {"message": ...}, which the caller sees. */
            static int fail(char **reply, const char *message) {
                host->log(BRANE_LOG_WARNING, message, strlen(message));
                reply_with(reply, "{\\"message\\":\\"%s\\"}", message); /* message: a constant without quotes */
                return BRANE_ERROR;
            }

            \(body)

            /* input is not NUL-terminated: answer() works on a terminated copy. */
            static int invoke(const char *method, const uint8_t *input, size_t length, uint8_t **output, size_t *output_length) {
                char *text = malloc(length + 1);
                if (!text) return BRANE_ERROR;
                memcpy(text, input, length);
                text[length] = 0;
                char *reply = NULL;
                int status = answer(method, text, &reply);
                free(text);
                if (!reply) return BRANE_ERROR;
                *output = (uint8_t *)reply;
                *output_length = strlen(reply);
                return status;
            }

            static void release(uint8_t *output, size_t length) {
                (void)length;
                free(output);
            }

            BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) {
                static const brane_plugin_descriptor descriptor = {
                    BRANE_DESCRIPTOR_HEADER, .kind = \(cKind), .id = "\(id)",
                    .version = "0.1.0", .init = init, .invoke = invoke, .release = release,
                };
                return &descriptor;
            }

            """
    }

    // MARK: - Swift

    private func swiftPackage(kit: String) -> String {
        """
        // swift-tools-version:5.9
        import PackageDescription

        // \(id): one dynamic library, built against the installed Brane plugin kit and nothing else.
        // The plugin imports only what it uses, not _Concurrency and _StringProcessing as Swift modules
        // do unasked, so it loads libswiftCore alone and each instance stays small. Using async code
        // or Regex? Import _Concurrency or _StringProcessing where you do, or drop the swiftSettings.
        let package = Package(
            name: "\(name)",
            products: [.library(name: "\(name)", type: .dynamic, targets: ["\(name)"])],
            dependencies: [.package(path: "\(kit)")],
            targets: [
                .target(name: "\(name)", dependencies: [.product(name: "BranePluginKit", package: "BranePluginKit")],
                        swiftSettings: [.unsafeFlags(["-Xfrontend", "-disable-implicit-concurrency-module-import",
                                                      "-Xfrontend", "-disable-implicit-string-processing-module-import"])]),
                .testTarget(name: "\(name)Tests", dependencies: ["\(name)"]),
            ])

        """
    }

    private var swiftMakefile: String {
        """
        # Builds \(libraryName) into this folder, where brane finds it beside manifest.yaml.
        \(libraryName): Package.swift $(wildcard Sources/\(name)/*.swift)
        \tswift build -c release --product \(name)
        \tcp .build/release/\(libraryName) $@

        test: \(libraryName)
        \tswift test
        \t./test.sh

        clean:
        \trm -rf .build \(libraryName)

        .PHONY: test clean

        """
    }

    /// The Swift kind's `invoke`, and the logic the unit test calls without a sandbox.
    private var swiftBody: (kind: String, body: String, test: String) {
        switch kind {
        case .synapse: ("synapse", """
                /// Input is {"name":"count_words","arguments":{"text":…}}, already checked against the
                /// manifest's inputSchema by the host.
                func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
                    guard method == "tools/call" else { throw PluginError("unknown method; this plugin answers tools/call") }
                    guard let text = try JSONValue(parsing: input)["arguments"]?["text"]?.stringValue else {
                        throw PluginError("no text argument")
                    }
                    return JSONValue.object(["words": .number(Double(Self.countWords(text)))]).bytes
                }

                static func countWords(_ text: String) -> Int {
                    text.split { !$0.isLetter && !$0.isNumber }.count
                }
            """, """
                    XCTAssertEqual(\(name).countWords("rest, then run"), 3)
                    XCTAssertEqual(\(name).countWords(""), 0)
            """)
        case .sensor: ("sensor", """
                /// A reading is a JSON object of numbers; the manifest's thresholds name them by path.
                func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
                    guard method == "sensor/sample" else { throw PluginError("unknown method; this sensor answers sensor/sample") }
                    guard let file = fopen("/proc/loadavg", "r") else { throw PluginError("cannot read /proc/loadavg") }
                    defer { fclose(file) }
                    var line = [CChar](repeating: 0, count: 256)
                    guard fgets(&line, Int32(line.count), file) != nil,
                          let reading = Self.reading(loadavg: String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                    else { throw PluginError("cannot parse /proc/loadavg") }
                    return reading.bytes
                }

                static func reading(loadavg: String) -> JSONValue? {
                    let fields = loadavg.split(separator: " ").prefix(3).compactMap { Double($0) }
                    guard fields.count == 3 else { return nil }
                    return ["load": ["1m": .number(fields[0]), "5m": .number(fields[1]), "15m": .number(fields[2])]]
                }
            """, """
                    XCTAssertEqual(\(name).reading(loadavg: "0.50 0.25 0.10 1/85 4242\\n")?["load"]?["1m"], .number(0.5))
                    XCTAssertNil(\(name).reading(loadavg: "garbage"))
            """)
        case .specialist: ("specialist", """
                /// specialist/consult: {"values": [...]} → {"mean", "count"}.
                /// specialist/event: {"value": v} → {"alerts": [...]}, one alert when v > 100. The answer
                /// follows from the event alone, so replaying events into a new instance is safe.
                func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
                    let request = try JSONValue(parsing: input)
                    switch method {
                    case "specialist/consult":
                        guard let values = request["values"]?.arrayValue?.compactMap(\\.numberValue), !values.isEmpty else {
                            throw PluginError("expected {\\"values\\": [numbers]}")
                        }
                        return JSONValue.object(["mean": .number(Self.mean(values)), "count": .number(Double(values.count))]).bytes
                    case "specialist/event":
                        guard let value = request["value"]?.numberValue else { throw PluginError("expected {\\"value\\": number}") }
                        return JSONValue.object(["alerts": .array(Self.alerts(value: value))]).bytes
                    default:
                        throw PluginError("unknown method; this specialist answers specialist/consult and specialist/event")
                    }
                }

                static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }

                static func alerts(value: Double) -> [JSONValue] {
                    value > 100 ? [["rule": "over-100", "message": .string("value \\(value) is over 100")]] : []
                }
            """, """
                    XCTAssertEqual(\(name).mean([90, 100, 110]), 100)
                    XCTAssertEqual(\(name).alerts(value: 120).count, 1)
                    XCTAssertEqual(\(name).alerts(value: 50).count, 0)
            """)
        case .scanner: ("scanner", """
                /// A scan answers {"assets": [{"kind", "key", "name", "properties"}]}; the host keeps each
                /// asset's history by kind and key.
                func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
                    guard method == "scanner/scan" else { throw PluginError("unknown method; this scanner answers scanner/scan") }
                    guard let file = fopen("/etc/hostname", "r") else { throw PluginError("cannot read /etc/hostname") }
                    defer { fclose(file) }
                    var line = [CChar](repeating: 0, count: 256)
                    guard fgets(&line, Int32(line.count), file) != nil else { throw PluginError("cannot read /etc/hostname") }
                    let name = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    return JSONValue.object(["assets": .array([Self.asset(hostname: name)])]).bytes
                }

                static func asset(hostname: String) -> JSONValue {
                    let name = hostname.trimmingSuffix()
                    return ["kind": "host", "key": .string(name), "name": .string(name), "properties": [:]]
                }
            """, """
                    XCTAssertEqual(\(name).asset(hostname: "build-7\\n")["key"], "build-7")
            """)
        }
    }

    private var swiftSource: String {
        let (kindCase, body, _) = swiftBody
        let helper = kind == .scanner ? """


            extension String {
                func trimmingSuffix() -> String { String(reversed().drop { $0.isWhitespace }.reversed()) }
            }
            """ : ""
        return """
            // \(id): a Brane \(kind.rawValue) plugin in Swift, on BranePluginKit (no Foundation: small and quick to start).
            import BranePluginKit
            import Glibc

            struct \(name): BranePlugin {
                static let id = "\(id)", version = "0.1.0", kind = PluginKind.\(kindCase)

                /// Runs inside the sandbox, once; `host.configJSON` is the manifest's `config`.
                init(host: PluginHost) {}

            \(body)
            }

            @_cdecl("brane_plugin_entry") public func entry() -> UnsafeRawPointer { exportPlugin(\(name).self) }\(helper)

            """
    }

    private var swiftTests: String {
        """
        // The plugin's logic, without a sandbox; test.sh runs it sandboxed through brane.
        @testable import \(name)
        import BranePluginKit
        import XCTest

        final class \(name)Tests: XCTestCase {
            func testLogic() {
        \(swiftBody.test)
            }
        }

        """
    }
}
