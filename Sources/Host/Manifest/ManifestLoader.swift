import Foundation
import Yams

/// Turns `manifest.yaml` into a `Manifest`, or into diagnostics that say exactly what is wrong.
public enum ManifestLoader {
    /// Loads and validates a manifest file. Throws `ValidationFailure` when there is any error;
    /// on success returns the manifest and its warnings.
    public static func load(path: String) throws -> (manifest: Manifest, warnings: [Diagnostic]) {
        let text = try YAMLFields.readFile(path)
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> (manifest: Manifest, warnings: [Diagnostic]) {
        var fields = YAMLFields(file: file)
        let manifest = fields.document(text).flatMap { read(root: $0, &fields) }
        guard let manifest, !fields.hasErrors else { throw ValidationFailure(diagnostics: fields.diagnostics) }
        return (manifest, fields.diagnostics)
    }

    static let topLevelKeys = ["apiVersion", "kind", "id", "version", "abi", "library", "description", "privacy",
                               "resources", "filesystem", "network", "tools", "sensor", "scanner", "specialist", "config"]
    static let requiredKeys: Set<String> = ["apiVersion", "kind", "id", "version", "abi", "library", "description", "privacy"]

    private static func read(root: Node, _ f: inout YAMLFields) -> Manifest? {
        guard let top = f.mapping(root, "", known: topLevelKeys, required: requiredKeys) else { return nil }

        let apiVersion = top["apiVersion"].flatMap { node -> String? in
            guard let value = f.string(node, "apiVersion") else { return nil }
            if value != Manifest.apiVersion { f.error(node, "apiVersion", "expected \(Manifest.apiVersion), found \"\(value)\"") }
            return value
        }
        let kind = top["kind"].flatMap { node -> PluginKind? in
            guard let value = f.string(node, "kind") else { return nil }
            guard let kind = PluginKind(rawValue: value) else {
                let hint = closestMatch(to: value, in: PluginKind.allCases.map(\.rawValue)).map { "; did you mean '\($0)'?" } ?? ""
                f.error(node, "kind", "expected specialist, synapse, sensor or scanner, found \"\(value)\"\(hint)")
                return nil
            }
            return kind
        }
        let id = top["id"].flatMap { node -> String? in
            guard let value = f.string(node, "id") else { return nil }
            if let problem = PluginID.problem(value) { f.error(node, "id", problem) }
            return value
        }
        let version = top["version"].flatMap { node -> SemanticVersion? in
            guard let value = f.string(node, "version") else { return nil }
            guard let version = SemanticVersion(value) else {
                f.error(node, "version", "expected a semantic version such as 1.2.0, found \"\(value)\"")
                return nil
            }
            return version
        }
        let abi = top["abi"].flatMap { readABI($0, &f) }
        let library = top["library"].flatMap { node -> String? in
            guard let value = f.nonEmptyString(node, "library") else { return nil }
            if value.hasPrefix("/") || value.split(separator: "/").contains("..") {
                f.error(node, "library", "expected a path inside the plugin directory, found \"\(value)\"")
            }
            return value
        }
        let description = top["description"].flatMap { f.nonEmptyString($0, "description") }
        let tier = top["privacy"].flatMap { readPrivacy($0, &f) }
        var resources = top["resources"].flatMap { readResources($0, &f) } ?? Resources()
        let filesystem = top["filesystem"].flatMap { readFilesystem($0, &f) } ?? FilesystemAccess()
        let network = top["network"].flatMap { readNetwork($0, &f) } ?? NetworkAccess()
        let tools = top["tools"].flatMap { readTools($0, &f) } ?? []
        let sensor = top["sensor"].flatMap { readSensor($0, &f) }
        let scanner = top["scanner"].flatMap { node -> ScannerSettings? in
            guard let m = f.mapping(node, "scanner", known: ["targets"], required: ["targets"]) else { return nil }
            return m["targets"].flatMap { f.stringList($0, "scanner.targets") }.map(ScannerSettings.init)
        }
        let specialist = top["specialist"].flatMap { readSpecialist($0, &f) }
        let config = top["config"].flatMap { node -> JSONValue? in
            guard node.mapping != nil else {
                f.error(node, "config", "expected a mapping, found \(f.describe(node))")
                return nil
            }
            return f.json(node, "config")
        } ?? .object([:])

        // Rules that relate fields to each other.
        if let kind {
            for (block, blockKind) in [("sensor", PluginKind.sensor), ("scanner", .scanner), ("specialist", .specialist)]
            where top[block] != nil && kind != blockKind {
                f.error(top[block], block, "a \(block) block belongs to \(block) plugins; this plugin's kind is \(kind.rawValue)")
            }
            if kind == .synapse && tools.isEmpty && top["tools"] == nil {
                f.error(root, "tools", "a synapse plugin must declare at least one tool")
            }
        }
        if let tier { checkNetwork(network, tier: tier, node: top["network"] ?? root, &f) }
        if !filesystem.write.isEmpty && resources.maxFileSizeBytes == 0 && top["resources"]?.mapping?["maxFileSize"] == nil {
            resources.maxFileSizeBytes = 64 << 20  // declared writers get a sane default cap, not zero
        }

        guard let apiVersion, let kind, let id, let version, let abi, let library, let description, let tier else {
            return nil
        }
        return Manifest(apiVersion: apiVersion, kind: kind, id: id, version: version, abi: abi, library: library,
                        description: description, tier: tier, resources: resources, filesystem: filesystem,
                        network: network, tools: tools, sensor: sensor, scanner: scanner, specialist: specialist,
                        config: config)
    }

    private static func readABI(_ node: Node, _ f: inout YAMLFields) -> ABIVersion? {
        // `abi: 1.0` is a YAML float, `abi: "1.0"` a string: accept both spellings.
        guard case .scalar(let scalar) = node else {
            f.error(node, "abi", "expected an ABI version such as \"1.0\", found \(f.describe(node))")
            return nil
        }
        guard let abi = ABIVersion(scalar.string) else {
            f.error(node, "abi", "expected an ABI version such as \"1.0\", found \(f.describe(node))")
            return nil
        }
        if let problem = abi.incompatibilityWithHost { f.error(node, "abi", problem) }
        return abi
    }

    private static func readPrivacy(_ node: Node, _ f: inout YAMLFields) -> PrivacyTier? {
        guard let m = f.mapping(node, "privacy", known: ["tier"], required: ["tier"]),
              let tierNode = m["tier"], let raw = f.integer(tierNode, "privacy.tier", in: 0...2)
        else { return nil }
        return PrivacyTier(rawValue: raw)
    }

    private static func readResources(_ node: Node, _ f: inout YAMLFields) -> Resources? {
        let keys = ["memory", "cpuTime", "callTimeout", "maxOutput", "openFiles", "maxFileSize", "threads"]
        guard let m = f.mapping(node, "resources", known: keys) else { return nil }
        var r = Resources()
        if let n = m["memory"], let v = f.byteSize(n, "resources.memory") {
            if v < 16 << 20 { f.error(n, "resources.memory", "at least 16MiB is needed to load a plugin") } else { r.memoryBytes = v }
        }
        if let n = m["cpuTime"], let v = f.duration(n, "resources.cpuTime") {
            if v < 1000 { f.error(n, "resources.cpuTime", "expected at least 1s") } else { r.cpuSeconds = UInt64(v / 1000) }
        }
        if let n = m["callTimeout"], let v = f.duration(n, "resources.callTimeout") {
            if v < 1 { f.error(n, "resources.callTimeout", "expected at least 1ms") } else { r.callTimeoutMilliseconds = v }
        }
        if let n = m["maxOutput"], let v = f.byteSize(n, "resources.maxOutput") {
            if v > 256 << 20 { f.error(n, "resources.maxOutput", "expected at most 256MiB") } else { r.maxOutputBytes = Int(v) }
        }
        if let n = m["openFiles"], let v = f.integer(n, "resources.openFiles", in: 8...65536) { r.openFiles = UInt64(v) }
        if let n = m["maxFileSize"], let v = f.byteSize(n, "resources.maxFileSize") { r.maxFileSizeBytes = v }
        if let n = m["threads"], let v = f.integer(n, "resources.threads", in: 1...4096) { r.threads = UInt64(v) }
        return r
    }

    private static func readFilesystem(_ node: Node, _ f: inout YAMLFields) -> FilesystemAccess? {
        guard let m = f.mapping(node, "filesystem", known: ["read", "write", "usage"]) else { return nil }
        var access = FilesystemAccess()
        if let n = m["usage"] {
            if let flag = n.bool { access.usage = flag } else { f.error(n, "filesystem.usage", "expected true or false, found \(f.describe(n))") }
        }
        access.read = m["read"].flatMap { f.stringList($0, "filesystem.read") } ?? []
        access.write = m["write"].flatMap { f.stringList($0, "filesystem.write") } ?? []
        let pluginDirectory = (f.file as NSString).deletingLastPathComponent
        for (key, paths) in [("read", access.read), ("write", access.write)] {
            for (index, path) in paths.enumerated() {
                let node = m[key]?.sequence?[index], field = "filesystem.\(key)[\(index)]"
                if path.isEmpty || path.split(separator: "/").contains("..") {
                    f.error(node, field, "paths may not be empty or contain '..': \"\(path)\"")
                } else if key == "write" && !path.hasPrefix("/") && path.split(separator: "/").allSatisfy({ $0 == "." }) {
                    f.error(node, field, "the plugin's whole directory may not be writable (its manifest and library are there); "
                        + "declare a subdirectory such as data/")
                } else if let link = symbolicLink(in: path, base: path.hasPrefix("/") ? nil : pluginDirectory, writable: key == "write") {
                    f.error(node, field, "\(link) is a symbolic link; entries are opened without following links "
                        + (path.hasPrefix("/") ? "(a writable one nowhere on its path)" : "(a relative one nowhere beneath the plugin directory)"))
                }
            }
        }
        return access
    }

    /// The first symbolic link on an entry's path that the runner would refuse to follow: any
    /// component of a relative entry (it must stay inside the plugin's own tree), any component
    /// of a writable absolute one. The runner checks again with openat2 when it starts the plugin.
    private static func symbolicLink(in path: String, base: String?, writable: Bool) -> String? {
        guard base != nil || writable else { return nil }
        var prefix = base ?? ""
        for component in path.split(separator: "/") where component != "." {
            prefix += "/" + component
            var info = stat()
            if lstat(prefix, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK { return prefix }
        }
        return nil
    }

    private static func readNetwork(_ node: Node, _ f: inout YAMLFields) -> NetworkAccess? {
        guard let m = f.mapping(node, "network", known: ["mode", "connect", "observe"], required: ["mode"]) else { return nil }
        var access = NetworkAccess()
        if let n = m["observe"] {
            if let flag = n.bool { access.observe = flag } else { f.error(n, "network.observe", "expected true or false, found \(f.describe(n))") }
        }
        if let n = m["mode"], let text = f.string(n, "network.mode") {
            if let mode = NetworkAccess.Mode(rawValue: text) {
                access.mode = mode
            } else {
                let hint = closestMatch(to: text, in: NetworkAccess.Mode.allCases.map(\.rawValue)).map { "; did you mean '\($0)'?" } ?? ""
                f.error(n, "network.mode", "expected none, loopback or hosts, found \"\(text)\"\(hint)")
            }
        }
        if let n = m["connect"] {
            guard let list = n.sequence else {
                f.error(n, "network.connect", "expected a list of {host, port} or {unix: /path}, found \(f.describe(n))")
                return access
            }
            for (index, item) in list.enumerated() {
                let path = "network.connect[\(index)]"
                if item.mapping?.keys.contains(where: { $0.string == "unix" }) == true {
                    guard let e = f.mapping(item, path, known: ["unix"], required: ["unix"]), let socket = e["unix"],
                          let socketPath = f.nonEmptyString(socket, "\(path).unix") else { continue }
                    if let problem = NetworkAccess.unixSocketPathProblem(socketPath) { f.error(socket, "\(path).unix", problem) }
                    access.unixSockets.append(socketPath)
                    continue
                }
                guard let e = f.mapping(item, path, known: ["host", "port"], required: ["host", "port"]),
                      let host = e["host"].flatMap({ f.nonEmptyString($0, "\(path).host") }),
                      let port = e["port"].flatMap({ f.integer($0, "\(path).port", in: 1...65535) })
                else { continue }
                access.endpoints.append(.init(host: host, port: port))
            }
        }
        return access
    }

    private static func checkNetwork(_ network: NetworkAccess, tier: PrivacyTier, node: Node, _ f: inout YAMLFields) {
        switch (tier, network.mode) {
        case (.sensitive, .none), (.local, .none), (.external, .none):
            if !network.destinations.isEmpty { f.error(node, "network.connect", "endpoints are declared but network.mode is none") }
        case (.sensitive, _):
            f.error(node, "network", "a tier-0 plugin handles sensitive data and may not declare network access (mode \(network.mode.rawValue)); use tier 1 or 2, or remove the network block")
        case (.local, .hosts):
            f.error(node, "network.mode", "a tier-1 plugin may only connect to loopback; mode hosts needs tier 2")
        case (_, .loopback):
            for (index, endpoint) in network.endpoints.enumerated() where !NetworkAccess.isLoopback(endpoint.host) {
                f.error(node, "network.connect[\(index)].host", "\(endpoint.host) is not a loopback address; mode loopback allows 127.0.0.0/8, ::1 and localhost")
            }
        case (.external, .hosts):
            if network.destinations.isEmpty { f.error(node, "network.connect", "mode hosts needs at least one declared {host, port}") }
        }
    }

    private static func readTools(_ node: Node, _ f: inout YAMLFields) -> [ToolDeclaration]? {
        guard let list = node.sequence else {
            f.error(node, "tools", "expected a list of tools, found \(f.describe(node))")
            return nil
        }
        var tools: [ToolDeclaration] = []
        for (index, item) in list.enumerated() {
            let path = "tools[\(index)]"
            guard let m = f.mapping(item, path, known: ["name", "description", "inputSchema"],
                                    required: ["name", "description", "inputSchema"]) else { continue }
            let name = m["name"].flatMap { n -> String? in
                guard let name = f.string(n, "\(path).name") else { return nil }
                if let problem = ToolDeclaration.nameProblem(name) {
                    f.error(n, "\(path).name", problem)
                }
                if tools.contains(where: { $0.name == name }) { f.error(n, "\(path).name", "duplicate tool name '\(name)'") }
                return name
            }
            let description = m["description"].flatMap { f.nonEmptyString($0, "\(path).description") }
            let schema = m["inputSchema"].flatMap { n -> JSONValue? in
                guard let schema = f.json(n, "\(path).inputSchema") else { return nil }
                for problem in JSONSchema.problems(in: schema, at: "\(path).inputSchema") {
                    let relative = problem.path.dropFirst("\(path).inputSchema".count)
                    f.error(n.descendant(at: relative), problem.path, problem.message)
                }
                if schema["type"] != .string("object") {
                    f.error(n, "\(path).inputSchema.type", "an MCP tool's inputSchema must have type: object")
                }
                return schema
            }
            if let name, let description, let schema {
                tools.append(ToolDeclaration(name: name, description: description, inputSchema: schema))
            }
        }
        return tools
    }

    private static func readSpecialist(_ node: Node, _ f: inout YAMLFields) -> SpecialistSettings? {
        guard let m = f.mapping(node, "specialist", known: ["domains", "consumes", "consults", "rules", "window"], required: ["domains"])
        else { return nil }
        let domains = m["domains"].flatMap { f.stringList($0, "specialist.domains") } ?? []
        let consumes = m["consumes"].flatMap { f.stringList($0, "specialist.consumes") } ?? []
        let consults = m["consults"].flatMap { f.stringList($0, "specialist.consults") } ?? []
        var rules: [RuleDeclaration] = []
        if let n = m["rules"] {
            if let list = n.sequence {
                for (index, item) in list.enumerated() {
                    let path = "specialist.rules[\(index)]"
                    guard let rule = f.mapping(item, path, known: ["id", "description"], required: ["id", "description"]),
                          let id = rule["id"].flatMap({ f.nonEmptyString($0, "\(path).id") }),
                          let description = rule["description"].flatMap({ f.nonEmptyString($0, "\(path).description") })
                    else { continue }
                    rules.append(RuleDeclaration(id: id, description: description))
                }
            } else {
                f.error(n, "specialist.rules", "expected a list of rules, found \(f.describe(n))")
            }
        }
        // Bounded: every new instance is replayed the whole window before its first event.
        let window = m["window"].flatMap { f.integer($0, "specialist.window", in: 1...SpecialistSettings.windowLimit) }
        return SpecialistSettings(domains: domains, consumes: consumes, consults: consults, rules: rules, window: window)
    }

    private static func readSensor(_ node: Node, _ f: inout YAMLFields) -> SensorSettings? {
        guard let m = f.mapping(node, "sensor", known: ["interval", "thresholds"], required: ["interval"]),
              let interval = m["interval"].flatMap({ f.duration($0, "sensor.interval") })
        else { return nil }
        let thresholds = m["thresholds"].map { f.thresholds($0, "sensor.thresholds") } ?? [:]
        return SensorSettings(intervalSeconds: Double(interval) / 1000, thresholds: thresholds)
    }
}
