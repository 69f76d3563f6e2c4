import Foundation
import Yams

/// A neuron whose plugins were found and whose privacy rules hold: what `validate` accepts and
/// `mcp serve`, `chat` and `run` start from.
public struct ResolvedNeuron: Sendable {
    public var config: NeuronConfig
    public var file: String
    /// Each enabled plugin's bundle, by id.
    public var bundles: [String: PluginBundle]

    public func bundle(_ id: String) -> PluginBundle { bundles[id]! }
}

/// Reads a neuron YAML file, finds its plugins, and checks the privacy rules, reporting every
/// problem with file:line:column and field path (and "did you mean" for keys and plugin ids).
public enum NeuronLoader {
    public static func load(path: String, plugins: PluginLocator) throws -> (neuron: ResolvedNeuron, warnings: [Diagnostic]) {
        let text = try YAMLFields.readFile(path)
        return try parse(text, file: path, plugins: plugins)
    }

    public static func parse(_ text: String, file: String, plugins: PluginLocator) throws -> (neuron: ResolvedNeuron, warnings: [Diagnostic]) {
        var fields = YAMLFields(file: file)
        var reader = Reader(plugins: plugins)
        let config = fields.document(text).flatMap { reader.read(root: $0, &fields) }
        guard let config, !fields.hasErrors else { throw ValidationFailure(diagnostics: fields.diagnostics) }
        return (ResolvedNeuron(config: config, file: file, bundles: reader.bundles), fields.diagnostics)
    }

    static let topLevelKeys = ["apiVersion", "kind", "id", "name", "description", "privacyTier", "model", "instructions",
                               "tools", "specialists", "sensors", "scanners", "host", "limits", "memory"]
    static let requiredKeys: Set<String> = ["apiVersion", "kind", "id", "name", "privacyTier", "model"]

    /// The rule every tier refusal at validation quotes.
    public static let tierRule = "a neuron of tier T may enable only plugins of tier T or lower"
    public static let endpointRule = "a neuron of tier 0 or 1 may only use a model on loopback or a unix socket"

    private struct Reader {
        let plugins: PluginLocator
        var bundles: [String: PluginBundle] = [:]
        lazy var available: [String] = plugins.availableIDs()

        init(plugins: PluginLocator) { self.plugins = plugins }

        mutating func read(root: Node, _ f: inout YAMLFields) -> NeuronConfig? {
            guard let top = f.mapping(root, "", known: topLevelKeys, required: requiredKeys) else { return nil }
            if let node = top["apiVersion"], let value = f.string(node, "apiVersion"), value != NeuronConfig.apiVersion {
                f.error(node, "apiVersion", "expected \(NeuronConfig.apiVersion), found \"\(value)\"")
            }
            if let node = top["kind"], let value = f.string(node, "kind"), value != "Neuron" {
                let hint = value.lowercased() == "neuron" ? "; did you mean 'Neuron'?" : ""
                f.error(node, "kind", "expected Neuron, found \"\(value)\"\(hint)")
            }
            let id = top["id"].flatMap { node -> String? in
                guard let value = f.string(node, "id") else { return nil }
                if value.range(of: #"^[a-z0-9][a-z0-9.-]*$"#, options: .regularExpression) == nil {
                    f.error(node, "id", "expected lowercase letters, digits, dots and dashes (e.g. sports-medicine), found \"\(value)\"")
                }
                return value
            }
            let name = top["name"].flatMap { f.nonEmptyString($0, "name") }
            let description = top["description"].flatMap { f.string($0, "description") } ?? ""
            let tier = top["privacyTier"].flatMap { f.integer($0, "privacyTier", in: 0...2) }.flatMap(PrivacyTier.init)
            let model = top["model"].flatMap { readModel($0, &f) }
            let instructions = top["instructions"].flatMap { f.string($0, "instructions") } ?? ""
            let tools = readUses(top["tools"], "tools", kind: .synapse, &f)
            let specialists = readUses(top["specialists"], "specialists", kind: .specialist, &f)
            let sensors = readUses(top["sensors"], "sensors", kind: .sensor, &f)
            let scanners = readUses(top["scanners"], "scanners", kind: .scanner, &f)
            let limits = top["limits"].flatMap { readLimits($0, &f) } ?? Limits()
            let memory = top["memory"].flatMap { node -> Memory? in
                guard let m = f.mapping(node, "memory", known: ["keepMessages"]) else { return nil }
                var memory = Memory()
                if let n = m["keepMessages"], let v = f.integer(n, "memory.keepMessages", in: 2...10_000) { memory.keepMessages = v }
                return memory
            } ?? Memory()

            let host = top["host"].map { readHost($0, &f) } ?? ReadHost()
            let uses = tools + specialists + sensors + scanners
            checkHostTools(host, uses: uses, top: top, &f)
            if let tier { checkPrivacy(neuron: "neuron \(id ?? "?") (tier \(tier.rawValue))", tier: tier, model: model, top: top,
                                       uses: uses, host: host, &f) }
            guard let id, let name, let tier, let model else { return nil }
            return NeuronConfig(id: id, name: name, description: description, privacyTier: tier, model: model,
                                instructions: instructions, tools: tools.map(\.use), specialists: specialists.map(\.use),
                                sensors: sensors.map { SensorUse(plugin: $0.use, thresholds: $0.thresholds) },
                                scanners: scanners.map(\.use), limits: limits, memory: memory,
                                host: HostAccess(tools: host.tools.map(\.tool), resources: host.resources))
        }

        func readModel(_ node: Node, _ f: inout YAMLFields) -> ModelSettings? {
            let keys = ["provider", "model", "endpoint", "fallbackEndpoint", "apiKeyEnv", "toolCalling", "timeout"]
            guard let m = f.mapping(node, "model", known: keys + ["apiKey"], required: ["provider", "model", "endpoint"]) else { return nil }
            if let n = m["apiKey"] {
                f.error(n, "model.apiKey", "secrets are never written in a neuron file; put the key in an environment variable and name it with apiKeyEnv: OPENAI_API_KEY")
            }
            let provider = m["provider"].flatMap { n -> ModelSettings.Provider? in
                guard let text = f.string(n, "model.provider") else { return nil }
                guard let provider = ModelSettings.Provider(rawValue: text) else {
                    let hint = closestMatch(to: text, in: ModelSettings.Provider.allCases.map(\.rawValue)).map { "; did you mean '\($0)'?" } ?? ""
                    f.error(n, "model.provider", "expected openai-compatible or ollama, found \"\(text)\"\(hint)")
                    return nil
                }
                return provider
            }
            let model = m["model"].flatMap { f.nonEmptyString($0, "model.model") }
            func endpoint(_ key: String) -> ModelEndpoint? {
                guard let n = m[key], let text = f.string(n, "model.\(key)") else { return nil }
                guard let endpoint = ModelEndpoint(text) else {
                    f.error(n, "model.\(key)", "expected an http(s) URL or unix:///path/to.sock, found \"\(text)\"")
                    return nil
                }
                return endpoint
            }
            let primary = endpoint("endpoint")
            let fallback = endpoint("fallbackEndpoint")
            let apiKeyEnv = m["apiKeyEnv"].flatMap { n -> String? in
                guard let text = f.string(n, "model.apiKeyEnv") else { return nil }
                if text.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) == nil {
                    f.error(n, "model.apiKeyEnv", "expected the name of an environment variable (e.g. OPENAI_API_KEY), found \"\(text.prefix(12))…\"; the key itself never goes in the file")
                    return nil
                }
                return text
            }
            let toolCalling = m["toolCalling"].flatMap { n -> ModelSettings.ToolCalling? in
                guard let text = f.string(n, "model.toolCalling") else { return nil }
                guard let mode = ModelSettings.ToolCalling(rawValue: text) else {
                    f.error(n, "model.toolCalling", "expected native or prompt, found \"\(text)\"")
                    return nil
                }
                return mode
            } ?? .native
            let timeout = m["timeout"].flatMap { f.duration($0, "model.timeout") } ?? 120_000
            guard let provider, let model, let primary else { return nil }
            return ModelSettings(provider: provider, model: model, endpoint: primary, fallbackEndpoint: fallback,
                                 apiKeyEnv: apiKeyEnv, toolCalling: toolCalling, timeoutMilliseconds: timeout)
        }

        struct ReadUse {
            var use: PluginUse
            var node: Node
            var path: String
            var thresholds: [String: Double]
        }

        /// A list of `{plugin: id, …}` entries; each plugin is found, and must be of `kind`.
        mutating func readUses(_ node: Node?, _ path: String, kind: PluginKind, _ f: inout YAMLFields) -> [ReadUse] {
            guard let node else { return [] }
            guard let list = node.sequence else {
                f.error(node, path, "expected a list of {plugin: id, …} entries, found \(f.describe(node))")
                return []
            }
            var keys = ["plugin", "config"]
            switch kind {
            case .synapse: keys += ["tools", "pool"]
            case .specialist: break
            case .sensor: keys += ["interval", "thresholds"]
            case .scanner: keys += ["interval"]
            }
            var uses: [ReadUse] = []
            var seen: Set<String> = []
            for (index, item) in list.enumerated() {
                let itemPath = "\(path)[\(index)]"
                guard let m = f.mapping(item, itemPath, known: keys, required: ["plugin"]),
                      let idNode = m["plugin"], let id = f.string(idNode, "\(itemPath).plugin") else { continue }
                if !seen.insert(id).inserted { f.error(idNode, "\(itemPath).plugin", "\(id) is listed twice under \(path)") }
                var use = PluginUse(id: id)
                var thresholds: [String: Double] = [:]
                guard let bundle = find(id, node: idNode, path: "\(itemPath).plugin", kind: kind, &f) else { continue }
                if let n = m["tools"], let names = f.stringList(n, "\(itemPath).tools") {
                    let declared = bundle.manifest.tools.map(\.name)
                    for (position, toolName) in names.enumerated() where !declared.contains(toolName) {
                        let hint = closestMatch(to: toolName, in: declared).map { "; did you mean '\($0)'?" } ?? ""
                        f.error(n.sequence?[position], "\(itemPath).tools[\(position)]",
                                "\(id) has no tool '\(toolName)'\(hint) (it declares: \(declared.joined(separator: ", ")))")
                    }
                    use.allowedTools = names
                }
                if let n = m["config"] {
                    if n.mapping == nil { f.error(n, "\(itemPath).config", "expected a mapping, found \(f.describe(n))") }
                    else { use.config = f.json(n, "\(itemPath).config") }
                }
                if let n = m["pool"], let size = f.integer(n, "\(itemPath).pool", in: 1...16) { use.pool = size }
                if let n = m["interval"], let ms = f.duration(n, "\(itemPath).interval") {
                    if ms < 250 { f.error(n, "\(itemPath).interval", "must be at least 250ms") } else { use.intervalSeconds = Double(ms) / 1000 }
                }
                if let n = m["thresholds"] {
                    thresholds = f.thresholds(n, "\(itemPath).thresholds", known: bundle.manifest.sensor.map { Array($0.thresholds.keys) } ?? [])
                }
                uses.append(ReadUse(use: use, node: idNode, path: "\(itemPath).plugin", thresholds: thresholds))
            }
            return uses
        }

        /// The plugin `id`, which must be a `kind` — checked in every section it appears in, not only the first.
        mutating func find(_ id: String, node: Node, path: String, kind: PluginKind, _ f: inout YAMLFields) -> PluginBundle? {
            let bundle: PluginBundle
            do {
                bundle = try bundles[id] ?? plugins.bundle(id)
            } catch is PluginLocator.NotFound {
                let hint = closestMatch(to: id, in: available).map { "; did you mean '\($0)'?" } ?? ""
                f.error(node, path, "no plugin '\(id)' is installed or in a --plugins directory\(hint) (`brane plugin list` shows what is; `brane plugin install \(id)` adds it)")
                return nil
            } catch {
                f.error(node, path, "plugin \(id) cannot be loaded: \(error)")
                return nil
            }
            guard bundle.manifest.kind == kind else {
                let section = ["synapse": "tools", "specialist": "specialists", "sensor": "sensors", "scanner": "scanners"][bundle.manifest.kind.rawValue]!
                f.error(node, path, "\(id) is a \(bundle.manifest.kind.rawValue), not a \(kind.rawValue); list it under \(section)")
                return nil
            }
            bundles[id] = bundle
            return bundle
        }

        struct ReadHost {
            var tools: [(tool: HostTool, node: Node, path: String)] = []
            var resources = false
            var resourcesNode: Node?
        }

        /// The `host:` section: host tools by name (each known, each once) and `resources`.
        func readHost(_ node: Node, _ f: inout YAMLFields) -> ReadHost {
            var host = ReadHost()
            if let list = node.sequence {
                let names = list.compactMap(\.string).map { UntrustedText.sanitized($0, limit: 40) }.joined(separator: ", ")
                f.error(node, "host", "expected a mapping, found a list; write host: {tools: [\(names)]} (and resources: true to offer them as MCP resources)")
                return host
            }
            guard let m = f.mapping(node, "host", known: ["tools", "resources"]) else { return host }
            if let n = m["tools"], let names = f.stringList(n, "host.tools") {
                let known = HostTool.allCases.map(\.rawValue)
                for (position, name) in names.enumerated() {
                    let item = n.sequence?[position], path = "host.tools[\(position)]"
                    guard let tool = HostTool(rawValue: name) else {
                        let hint = closestMatch(to: name, in: known).map { "; did you mean '\($0)'?" } ?? ""
                        f.error(item, path, "no host tool '\(UntrustedText.sanitized(name, limit: 80))'\(hint) (the host offers: \(known.joined(separator: ", ")))")
                        continue
                    }
                    if host.tools.contains(where: { $0.tool == tool }) { f.error(item, path, "\(name) is listed twice under host.tools") }
                    else if let item { host.tools.append((tool, item, path)) }
                }
            }
            if let n = m["resources"] {
                host.resourcesNode = n
                if n.tagName == .bool, let flag = n.bool { host.resources = flag }
                else { f.error(n, "host.resources", "expected true or false, found \(f.describe(n))") }
            }
            return host
        }

        /// A host tool takes a name no plugin tool of the neuron has, and has something to read.
        func checkHostTools(_ host: ReadHost, uses: [ReadUse], top: [String: Node], _ f: inout YAMLFields) {
            for (tool, node, path) in host.tools {
                for use in uses {
                    guard let manifest = bundles[use.use.id]?.manifest else { continue }
                    let names = manifest.kind == .specialist ? [ExposedTool.consultName(manifest.id)]
                        : manifest.kind == .synapse ? manifest.tools.map(\.name).filter { use.use.allowedTools?.contains($0) ?? true } : []
                    if names.contains(tool.rawValue) {
                        f.error(node, path, "host tool \(tool.rawValue) has the name of a tool of \(manifest.id) (\(use.path)); a neuron's tool names are unique: leave one out (under \(use.path.replacingOccurrences(of: ".plugin", with: ".tools")) or host.tools)")
                    }
                }
                // By the sections the file lists, found or not: a plugin that is missing is its own error.
                let sections = tool.sources.map { ["sensor": "sensors", "scanner": "scanners", "specialist": "specialists", "synapse": "tools"][$0.rawValue]! }
                if !sections.contains(where: { top[$0]?.sequence?.isEmpty == false }) {
                    f.warning(node, path, "\(tool.rawValue) reads what the neuron's \(sections.joined(separator: ", ")) stored, and it lists none: its answers will be empty")
                }
            }
            if host.resources && host.tools.isEmpty {
                f.warning(host.resourcesNode, "host.resources", "resources are the answers of the host tools listed in host.tools, and none are listed: no resource is offered")
            }
        }

        /// The privacy rules: plugin tiers against the neuron's, the model endpoint against the
        /// neuron's tier, and data flows through the model (every tool's output reaches the model,
        /// and the model passes what it knows to every tool it calls).
        func checkPrivacy(neuron: String, tier: PrivacyTier, model: ModelSettings?, top: [String: Node], uses: [ReadUse], host: ReadHost, _ f: inout YAMLFields) {
            for use in uses {
                guard let manifest = bundles[use.use.id]?.manifest, manifest.tier > tier else { continue }
                f.error(use.node, use.path, "\(manifest.id) (tier \(manifest.tier.rawValue)) may not be enabled in \(neuron): \(tierRule)")
            }
            let endpoints = [("endpoint", model?.endpoint), ("fallbackEndpoint", model?.fallbackEndpoint)]
            for (key, endpoint) in endpoints {
                guard let endpoint, !endpoint.isLocal, tier < .external else { continue }
                f.error(top["model"]?.mapping?["\(key)"], "model.\(key)",
                        "model endpoint \(endpoint) is not on this machine and may not serve \(neuron): \(endpointRule)")
            }
            let callable = uses.filter { bundles[$0.use.id].map { [.synapse, .specialist].contains($0.manifest.kind) } ?? false }
            for use in callable {
                let source = DataFlow.End(id: use.use.id, tier: bundles[use.use.id]!.manifest.tier)
                for (key, endpoint) in endpoints {
                    guard let endpoint, let refusal = DataFlow.refusal("output", from: source, to: .init(id: "model endpoint \(endpoint)", tier: endpoint.tier)) else { continue }
                    f.error(use.node, use.path, refusal + " (every tool result goes to the model, here at model.\(key))")
                }
                for other in callable {
                    let destination = DataFlow.End(id: other.use.id, tier: bundles[other.use.id]!.manifest.tier)
                    guard let refusal = DataFlow.refusal("output", from: source, to: destination) else { continue }
                    f.error(other.node, other.path, refusal + " (the model passes what one tool returns to the tools it calls next)")
                }
            }
            // A host tool's answers hold what its sources observed: they go to the model and on to
            // the tools it calls next, like any tool's. What it is sent stays in the host.
            let manifests = uses.compactMap { bundles[$0.use.id]?.manifest }
            for (tool, node, path) in host.tools {
                let source = DataFlow.End(id: "host tool \(tool.rawValue)", tier: HostObservations.tier(of: tool, among: manifests, neuronTier: tier))
                for (key, endpoint) in endpoints {
                    guard let endpoint, let refusal = DataFlow.refusal("output", from: source, to: .init(id: "model endpoint \(endpoint)", tier: endpoint.tier)) else { continue }
                    f.error(node, path, refusal + " (every tool result goes to the model, here at model.\(key))")
                }
                for other in callable {
                    let destination = DataFlow.End(id: other.use.id, tier: bundles[other.use.id]!.manifest.tier)
                    guard let refusal = DataFlow.refusal("output", from: source, to: destination) else { continue }
                    f.error(other.node, other.path, refusal + " (the model passes what one tool returns to the tools it calls next)")
                }
            }
        }
    }

    static func readLimits(_ node: Node, _ f: inout YAMLFields) -> Limits? {
        guard let m = f.mapping(node, "limits", known: ["maxTurns", "callTimeout", "dailyTokenBudget"]) else { return nil }
        var limits = Limits()
        if let n = m["maxTurns"], let v = f.integer(n, "limits.maxTurns", in: 1...100) { limits.maxTurns = v }
        if let n = m["callTimeout"], let v = f.duration(n, "limits.callTimeout") {
            if v < 10 { f.error(n, "limits.callTimeout", "must be at least 10ms") } else { limits.callTimeoutMilliseconds = v }
        }
        if let n = m["dailyTokenBudget"], let v = f.integer(n, "limits.dailyTokenBudget", in: 1...1_000_000_000) { limits.dailyTokenBudget = v }
        return limits
    }
}

extension ResolvedNeuron {
    public func plan(for use: PluginUse) throws -> SandboxPlan { try plan(for: bundle(use.id)) }

    /// The sandbox a plugin gets inside this neuron: its manifest's, with the neuron's config for
    /// it (when the neuron lists it) merged in as a JSON Merge Patch, and the neuron's per-call
    /// timeout cap.
    /// Specialists a listed one consults get the cap too.
    public func plan(for bundle: PluginBundle) throws -> SandboxPlan {
        var plan = try SandboxPlan(bundle: bundle)
        let use = config.allPlugins.first { $0.id == bundle.manifest.id }
        if let patch = use?.config { plan.config = plan.config.merging(patch) }
        if let cap = config.limits.callTimeoutMilliseconds { plan.callTimeoutMilliseconds = min(plan.callTimeoutMilliseconds, cap) }
        return plan
    }

    /// The tools the model and MCP clients may call: each tool plugin's allowed tools, one
    /// `consult_<id>` per specialist, and the host tools its `host:` section lists.
    public var exposedTools: [ExposedTool] {
        var tools: [ExposedTool] = []
        for use in config.tools {
            let manifest = bundle(use.id).manifest
            for tool in manifest.tools where use.allowedTools?.contains(tool.name) ?? true {
                tools.append(ExposedTool(name: tool.name, description: tool.description, inputSchema: tool.inputSchema,
                                         use: use, tier: manifest.tier, target: .tool(tool.name)))
            }
        }
        for use in config.specialists {
            let manifest = bundle(use.id).manifest
            tools.append(ExposedTool(name: ExposedTool.consultName(use.id), description: "Consult the \(use.id) specialist: \(manifest.description)",
                                     inputSchema: ExposedTool.consultSchema, use: use, tier: manifest.tier, target: .consult))
        }
        return tools + config.host.tools.map { HostObservations.exposedTool($0, in: self) }
    }
}
