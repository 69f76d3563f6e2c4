//! com.brane.readability: how plain a text reads, for patient- and client-facing writing.
//! A synapse plugin in Rust on the standard library alone, proof that the ABI is language-neutral.
mod abi;
mod json;

use std::ffi::CStr;

struct Readability;

impl abi::Plugin for Readability {
    // Both literals end in their only NUL.
    const ID: &'static CStr = unsafe { CStr::from_bytes_with_nul_unchecked(b"com.brane.readability\0") };
    const VERSION: &'static CStr = unsafe { CStr::from_bytes_with_nul_unchecked(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) };

    /// Input is {"name":"readability","arguments":{"text":…}}, already checked against the
    /// manifest's inputSchema by the host.
    fn call(method: &str, input: &[u8]) -> Result<String, String> {
        if method != "tools/call" {
            return Err(format!("unknown method {}; this plugin answers tools/call", json::quoted(method)));
        }
        let call = json::parse(input)?;
        let text = call.get("arguments").and_then(|a| a.get("text")).and_then(json::Value::as_str)
            .ok_or("no text argument")?;
        Ok(Scores::of(text)?.json())
    }
}

static DESCRIPTOR: abi::Descriptor = abi::descriptor::<Readability>();

#[no_mangle]
pub extern "C" fn brane_plugin_entry() -> *const abi::Descriptor {
    &DESCRIPTOR
}

#[derive(Debug, PartialEq)]
struct Scores {
    words: usize,
    sentences: usize,
    syllables: usize,
}

impl Scores {
    /// One pass, nothing kept per word: a text the size of the whole call frame (16 MiB through
    /// `plugin run`, past the schema's 200,000 characters) must not outgrow the 64 MiB limit.
    fn of(text: &str) -> Result<Scores, String> {
        let mut scores = Scores { words: 0, sentences: 0, syllables: 0 };
        let is_word_char = |c: char| c.is_alphanumeric() || c == '\'' || c == '’';
        for word in text.split(|c: char| !is_word_char(c)).filter(|w| w.chars().any(char::is_alphanumeric)) {
            scores.words += 1;
            scores.syllables += syllables(word);
        }
        if scores.words == 0 {
            return Err("the text has no words".into());
        }
        // A sentence ends at a run of . ! ? followed by a space or the end; text without one is one sentence.
        let mut characters = text.chars().peekable();
        while let Some(c) = characters.next() {
            if matches!(c, '.' | '!' | '?') {
                while matches!(characters.peek(), Some('.' | '!' | '?')) {
                    characters.next();
                }
                if characters.peek().map_or(true, |next| next.is_whitespace()) {
                    scores.sentences += 1;
                }
            }
        }
        scores.sentences = scores.sentences.max(1);
        Ok(scores)
    }

    /// Flesch reading ease: 206.835 − 1.015 words/sentence − 84.6 syllables/word.
    fn reading_ease(&self) -> f64 {
        206.835 - 1.015 * self.words_per_sentence() - 84.6 * self.syllables_per_word()
    }

    /// Flesch–Kincaid grade level: 0.39 words/sentence + 11.8 syllables/word − 15.59.
    fn grade_level(&self) -> f64 {
        0.39 * self.words_per_sentence() + 11.8 * self.syllables_per_word() - 15.59
    }

    fn words_per_sentence(&self) -> f64 {
        self.words as f64 / self.sentences as f64
    }

    fn syllables_per_word(&self) -> f64 {
        self.syllables as f64 / self.words as f64
    }

    fn json(&self) -> String {
        let ease = self.reading_ease();
        let level = match ease {
            e if e >= 70.0 => "plain",
            e if e >= 50.0 => "fairly difficult",
            _ => "difficult",
        };
        format!(
            "{{\"words\":{},\"sentences\":{},\"syllables\":{},\"fleschReadingEase\":{:.1},\"gradeLevel\":{:.1},\"level\":{}}}",
            self.words, self.sentences, self.syllables, ease, self.grade_level(), json::quoted(level)
        )
    }
}

/// English syllables by the usual heuristic: groups of vowels, less a silent final e; at least one.
/// Only the first 64 letters are looked at: no English word is longer, and a 16 MiB "word" must
/// not be copied whole.
fn syllables(word: &str) -> usize {
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).take(64).collect();
    let vowel = |c: char| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
    let mut count = 0;
    let mut previous = false;
    for &c in &letters {
        let is_vowel = vowel(c);
        if is_vowel && !previous {
            count += 1;
        }
        previous = is_vowel;
    }
    let silent_e = letters.len() > 2 && letters.ends_with(&['e']) && !letters.ends_with(&['l', 'e']) && !vowel(letters[letters.len() - 2]);
    if silent_e && count > 1 {
        count -= 1;
    }
    count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::Plugin;

    #[test]
    fn counts_syllables_the_usual_way() {
        for (word, expected) in [("rest", 1), ("table", 2), ("make", 1), ("recovery", 4), ("variability", 5), ("the", 1), ("HRV", 1)] {
            assert_eq!(syllables(word), expected, "{word}");
        }
    }

    #[test]
    fn plain_text_scores_plain_and_dense_text_difficult() {
        let plain = Scores::of("Rest today. Then run. You will feel good!").unwrap();
        assert_eq!(plain, Scores { words: 8, sentences: 3, syllables: 9 });
        assert!(plain.reading_ease() > 90.0);
        let dense = Scores::of("Heart rate variability demonstrates considerable interindividual physiological heterogeneity.").unwrap();
        assert_eq!(dense.sentences, 1);
        assert!(dense.reading_ease() < 0.0 && dense.grade_level() > 18.0);
        assert!(Scores::of("e.g. 3.5 mg").unwrap().sentences == 1);
        assert_eq!(Scores::of(" … — ").unwrap_err(), "the text has no words");
    }

    #[test]
    fn answers_only_tools_call_and_quotes_what_it_echoes() {
        assert!(Readability::call("tools/call", br#"{"name":"readability","arguments":{"text":"Go."}}"#).unwrap().contains("\"words\":1"));
        assert_eq!(Readability::call("x\"y", b"{}").unwrap_err(), r#"unknown method "x\"y"; this plugin answers tools/call"#);
        assert!(Readability::call("tools/call", b"{\"arguments\":").is_err());
    }

    #[test]
    fn a_text_as_large_as_a_call_frame_is_scored_in_bounded_memory() {
        let text = "a ".repeat(8 << 20);
        assert_eq!(Scores::of(&text).unwrap(), Scores { words: 8 << 20, sentences: 1, syllables: 8 << 20 });
        let one_word = "b".repeat(4 << 20);
        assert_eq!(Scores::of(&one_word).unwrap().syllables, 1);
    }
}
