import BranePluginCodable

/// com.brane.units — offline unit and dose conversion for health teams (mass, volume,
/// temperature, length, energy, blood glucose). A tier-0 synapse tool in Swift.
struct Units: BranePlugin {
    static let id = "com.brane.units"
    static let kind = PluginKind.synapse

    init(host: PluginHost) {}

    struct Call: Decodable {
        var name: String
        var arguments: Arguments
    }

    struct Arguments: Decodable {
        var value: Double
        var from: String
        var to: String
    }

    struct Answer: Encodable {
        var value: Double
        var unit: String
        var text: String
    }

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "tools/call" else { throw PluginError("unknown method \(method); this plugin answers tools/call") }
        let call = try decodeJSON(Call.self, from: input)
        guard call.name == "convert_units" else { throw PluginError("unknown tool \(call.name)") }
        let a = call.arguments
        let converted = try convert(a.value, from: a.from, to: a.to)
        // To six places; past 1e15 a double has no places left to round, and ×1e6 could overflow.
        let rounded = abs(converted) < 1e15 ? (converted * 1e6).rounded() / 1e6 : converted
        guard rounded.isFinite else { throw PluginError("\(format(a.value)) \(a.from) in \(a.to) is beyond the range of a number") }
        return try encodeJSON(Answer(value: rounded, unit: a.to, text: "\(format(a.value)) \(a.from) = \(format(rounded)) \(a.to)"))
    }

    /// Units of one dimension share a base unit: factor × value gives the base.
    static let linear: [String: (dimension: String, factor: Double)] = [
        "mcg": ("mass", 1e-6), "mg": ("mass", 1e-3), "g": ("mass", 1), "kg": ("mass", 1000),
        "oz": ("mass", 28.349523125), "lb": ("mass", 453.59237),
        "mL": ("volume", 1e-3), "L": ("volume", 1), "tsp": ("volume", 0.00492892159375),
        "tbsp": ("volume", 0.01478676478125), "fl_oz": ("volume", 0.0295735295625), "cup": ("volume", 0.2365882365),
        "mm": ("length", 1e-3), "cm": ("length", 1e-2), "m": ("length", 1), "in": ("length", 0.0254), "ft": ("length", 0.3048),
        "kcal": ("energy", 4.184), "kJ": ("energy", 1),
        "mg/dL": ("glucose", 1 / 18.016), "mmol/L": ("glucose", 1),  // glucose: 1 mmol/L = 18.016 mg/dL
    ]

    func convert(_ value: Double, from: String, to: String) throws -> Double {
        if let celsius = Self.toCelsius(value, from), let result = Self.fromCelsius(celsius, to) { return result }
        guard let source = Self.linear[from] else { throw PluginError("unknown unit \(from)") }
        guard let target = Self.linear[to] else { throw PluginError("unknown unit \(to)") }
        guard source.dimension == target.dimension else {
            throw PluginError("cannot convert \(source.dimension) (\(from)) to \(target.dimension) (\(to))")
        }
        return value * source.factor / target.factor
    }

    static func toCelsius(_ value: Double, _ unit: String) -> Double? {
        switch unit {
        case "degC": value
        case "degF": (value - 32) * 5 / 9
        case "K": value - 273.15
        default: nil
        }
    }

    static func fromCelsius(_ value: Double, _ unit: String) -> Double? {
        switch unit {
        case "degC": value
        case "degF": value * 9 / 5 + 32
        case "K": value + 273.15
        default: nil
        }
    }

    func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

@_cdecl("brane_plugin_entry")
public func braneUnitsEntry() -> UnsafeRawPointer { exportPlugin(Units.self) }
