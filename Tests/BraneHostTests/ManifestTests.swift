import BraneHost
import XCTest

final class ManifestTests: XCTestCase {
    static let valid = """
        apiVersion: brane.dev/v1
        kind: synapse
        id: com.example.dose
        version: 1.2.0
        abi: "1.0"
        library: libdose.so
        description: Dose calculator.
        privacy:
          tier: 0
        resources:
          memory: 64MiB
          callTimeout: 250ms
        tools:
          - name: dose
            description: Compute a dose.
            inputSchema:
              type: object
              properties:
                weightKg: {type: number, minimum: 0}
              required: [weightKg]
        """

    private func diagnostics(_ yaml: String) -> [Diagnostic] {
        do {
            return try ManifestLoader.parse(yaml, file: "manifest.yaml").warnings
        } catch let failure as ValidationFailure {
            return failure.diagnostics
        } catch {
            XCTFail("\(error)")
            return []
        }
    }

    func testValidManifestLoadsWithItsValues() throws {
        let (manifest, warnings) = try ManifestLoader.parse(Self.valid, file: "manifest.yaml")
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(manifest.id, "com.example.dose")
        XCTAssertEqual(manifest.version, SemanticVersion("1.2.0"))
        XCTAssertEqual(manifest.tier, .sensitive)
        XCTAssertEqual(manifest.resources.memoryBytes, 64 << 20)
        XCTAssertEqual(manifest.resources.callTimeoutMilliseconds, 250)
        XCTAssertEqual(manifest.tools.first?.inputSchema["required"], .array([.string("weightKg")]))
    }

    func testTheBundledManifestsAreValid() throws {
        for directory in ["Plugins/com.brane.sysinfo", "Plugins/com.brane.units", "Tests/Fixtures/Hostile"] {
            let (_, warnings) = try ManifestLoader.load(path: Harness.repository.appendingPathComponent(directory + "/manifest.yaml").path)
            XCTAssertEqual(warnings, [], directory)
        }
    }

    func testMisspelledRequiredKeyIsAnErrorWithPositionAndSuggestion() {
        let found = diagnostics(Self.valid.replacingOccurrences(of: "version: 1.2.0", with: "verison: 1.2.0"))
        XCTAssertEqual(found.map(\.description), ["manifest.yaml:4:1: error: verison: unknown key 'verison'; did you mean 'version'?"])
    }

    func testUnknownKeyWarnsAndNamesTheClosestKnownKey() throws {
        let (_, warnings) = try ManifestLoader.parse(Self.valid.replacingOccurrences(of: "  callTimeout: 250ms", with: "  callTimeout: 250ms\n  treads: 4"), file: "m.yaml")
        XCTAssertEqual(warnings.map(\.description), ["m.yaml:13:3: warning: resources.treads: unknown key 'treads' is ignored; did you mean 'threads'?"])
    }

    func testWrongTypeNamesTheFieldPathAndWhatWasFound() {
        let found = diagnostics(Self.valid.replacingOccurrences(of: "  tier: 0", with: "  tier: [0]"))
        XCTAssertEqual(found.map(\.description), ["manifest.yaml:9:9: error: privacy.tier: expected a whole number, found a list"])
    }

    func testTierZeroDeclaringNetworkIsRejected() {
        let found = diagnostics(Self.valid + "\nnetwork:\n  mode: loopback\n  connect: [{host: 127.0.0.1, port: 8080}]\n")
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].message.contains("a tier-0 plugin handles sensitive data and may not declare network access"), found[0].message)
        XCTAssertEqual(found[0].path, "network")
    }

    func testTierOneMayOnlyDeclareLoopback() {
        let tierOne = Self.valid.replacingOccurrences(of: "  tier: 0", with: "  tier: 1")
        XCTAssertEqual(diagnostics(tierOne + "\nnetwork:\n  mode: loopback\n  connect: [{host: 127.0.0.1, port: 8080}]\n"), [])
        let outside = diagnostics(tierOne + "\nnetwork:\n  mode: loopback\n  connect: [{host: 10.0.0.1, port: 8080}]\n")
        XCTAssertEqual(outside.first?.path, "network.connect[0].host")
        XCTAssertEqual(diagnostics(tierOne + "\nnetwork:\n  mode: hosts\n  connect: [{host: example.org, port: 443}]\n").first?.path, "network.mode")
    }

    func testInvalidYAMLReportsLineAndColumn() {
        let found = diagnostics("apiVersion: brane.dev/v1\nkind: [synapse\nid: x\n")
        XCTAssertEqual(found.count, 1)
        XCTAssertEqual(found[0].line, 3)
        XCTAssertTrue(found[0].message.hasPrefix("invalid YAML:"), found[0].message)
    }

    func testIncompatibleABIMajorIsRejected() {
        let found = diagnostics(Self.valid.replacingOccurrences(of: #"abi: "1.0""#, with: #"abi: "2.0""#))
        XCTAssertEqual(found.map(\.message), ["plugin ABI 2.0, host ABI \(ABIVersion.host): incompatible ABI: the plugin was built for a newer major version than this host"])
    }

    func testEveryMistakeInAFileIsReportedInOneRun() {
        let broken = Self.valid
            .replacingOccurrences(of: "kind: synapse", with: "kind: synapes")
            .replacingOccurrences(of: "version: 1.2.0", with: "version: 1.2")
            .replacingOccurrences(of: "memory: 64MiB", with: "memory: lots")
        XCTAssertEqual(diagnostics(broken).map(\.path), ["kind", "version", "resources.memory"])
        XCTAssertTrue(diagnostics(broken)[0].message.hasSuffix("did you mean 'synapse'?"))
    }

    func testSchemaKeywordsTheValidatorCannotEnforceAreErrors() {
        let found = diagnostics(Self.valid.replacingOccurrences(of: "required: [weightKg]", with: "requried: [weightKg]"))
        XCTAssertEqual(found.map(\.description), ["manifest.yaml:20:7: error: tools[0].inputSchema.requried: unsupported schema keyword 'requried'; did you mean 'required'?"])
    }

    func testKindSpecificBlockMustMatchTheKind() {
        let found = diagnostics(Self.valid + "\nsensor:\n  interval: 5s\n")
        XCTAssertEqual(found.map(\.path), ["sensor"])
    }

    /// A scalar whose tag says number or boolean but whose text is neither is an error where it
    /// stands; it used to make the whole `config` (or a tool's schema) vanish without a word.
    func testAScalarThatIsNotWhatItsTagSaysIsAnErrorNotAMissingBlock() {
        let cases = ["\nconfig: {limit: 5, weird: 0x_}": "manifest.yaml:21:27: error: config.weird: expected a finite number, found '0x_'",
                     "\nconfig: {flag: !!bool maybe}": "manifest.yaml:21:16: error: config.flag: expected true or false, found 'maybe'",
                     "\nconfig: {big: .inf}": "manifest.yaml:21:15: error: config.big: expected a finite number, found '.inf'"]
        for (tail, expected) in cases {
            let found = diagnostics(Self.valid + tail).map(\.description)
            XCTAssertTrue(found.contains { $0.hasPrefix(expected) }, "\(tail) → \(found)")
        }
        let schema = diagnostics(Self.valid.replacingOccurrences(of: "{type: number, minimum: 0}", with: "{type: number, minimum: 0x_}")).map(\.description)
        XCTAssertTrue(schema.contains { $0.contains("expected a finite number, found '0x_'") }, "\(schema)")
    }

    func testSemanticVersionsOrderAsSemverSays() {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "10.0.0"]
        XCTAssertEqual(ordered.compactMap(SemanticVersion.init).sorted().map(\.description), ordered)
        XCTAssertNil(SemanticVersion("01.0.0"))
        XCTAssertNil(SemanticVersion("1.0"))
    }

    /// An ABI version is two runs of decimal digits: a sign, a space or an empty part that `Int`
    /// alone would let through (or trip on) is refused, in a manifest and an index alike.
    func testABIVersionsAreDigitsOnly() {
        XCTAssertEqual(ABIVersion("1.2"), ABIVersion(major: 1, minor: 2))
        XCTAssertEqual(ABIVersion("10.0"), ABIVersion(major: 10, minor: 0))
        for text in ["+1.2", "1.+2", "-0.1", "1.-0", " 1.2", "1.2 ", "1.", ".2", "1..2", "1.2.3", "", "١.٢", "99999999999999999999.0"] {
            XCTAssertNil(ABIVersion(text), text)
        }
    }
}
