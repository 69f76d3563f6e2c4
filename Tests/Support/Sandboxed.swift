import BraneHost
import Foundation
import XCTest

/// A bundled or copied plugin directory, supervised in its real sandbox and stopped when the test ends.
public func sandboxed(_ directory: String, config: JSONValue? = nil, for test: XCTestCase) throws -> SupervisedPlugin {
    var plan = try SandboxPlan(bundle: try PluginBundle.open(directory))
    if let config { plan.config = config }
    let plugin = SupervisedPlugin(plan: plan, runner: try ResourceLocator.current.runner())
    test.addTeardownBlock { plugin.stop() }
    return plugin
}

extension SupervisedPlugin {
    /// One sensor/sample answer as JSON; throws when the plugin answers an error.
    public func sample() throws -> JSONValue {
        switch try call(method: "sensor/sample", input: Array("{}".utf8)) {
        case .result(let bytes): return try JSONValue(parsing: bytes)
        case .pluginError(let bytes): throw PluginAnswer(message: (try? JSONValue(parsing: bytes))?["message"]?.stringValue ?? "")
        }
    }
}

/// A plugin's error answer, with its message.
public struct PluginAnswer: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
