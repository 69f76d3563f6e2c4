/// The closest candidate to a misspelled word, if it is close enough to be the likely intent.
/// Words and candidates past 64 characters are never suggested for: the distance costs the product
/// of their lengths, and no typo of a name is that long (a 5 MB argument took 33 s).
func closestMatch(to word: String, in candidates: some Sequence<String>) -> String? {
    guard word.utf8.count <= 64 else { return nil }
    let lowered = word.lowercased()
    var best: (candidate: String, distance: Int)?
    for candidate in candidates where candidate.utf8.count <= 64 {
        let distance = editDistance(lowered, candidate.lowercased())
        if distance < (best?.distance ?? .max) { best = (candidate, distance) }
    }
    guard let best else { return nil }
    // One edit per four characters, at least one: "verison"→"version", not "id"→"kind".
    return best.distance <= max(1, best.candidate.count / 4) ? best.candidate : nil
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previousPrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                current[j] = min(current[j], previousPrevious[j - 2] + 1)
            }
        }
        (previousPrevious, previous, current) = (previous, current, previousPrevious)
    }
    return previous[b.count]
}
