//! When two userNames are one name, and what a userName may not hold.
//!
//! IdPs send look-alikes of one name: `straße` and `STRASSE`, a composed `é` (NFC) and
//! `e` + U+0301 (NFD), full-width `ａｌｉｃｅ`, `alice ` with a trailing space. Stored
//! as separate users they become two accounts for one person downstream. RFC 7613
//! (PRECIS, the UsernameCaseMapped profile) compares userNames after width mapping,
//! Unicode default case folding and NFC; RFC 8265, which replaced it, maps case with
//! `toLowerCase` instead, under which `straße` and `strasse` stay two names. We keep
//! folding: the bridge only compares with the key — the value is stored and returned
//! as sent, as Entra expects — so folding loses nothing, and two accounts for one
//! look-alike name is exactly what must not happen. So the key is Unicode's
//! *compatibility caseless match* (Unicode §3.13, D146: NFKD of the case fold of the
//! NFKD of the case fold of NFD, which covers RFC 7613's width mapping and more),
//! composed back with NFC, with surrounding white space not counting.
//!
//! What PRECIS's IdentifierClass would refuse and real directories do hold (spaces
//! inside a name, symbols) is accepted; control characters, invisible format
//! characters (zero-width joiners, byte-order marks, bidi controls), line and paragraph
//! separators, blank values and values over [`MAX_CHARS`] are refused with
//! `invalidValue` in every dialect: they are never a person's name, and they are how
//! look-alikes that no key can join are made.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::scim::error::ScimError;

/// Longest userName accepted, in characters (Unicode scalar values). Entra UPNs are at
/// most 113 characters and e-mail addresses 254; this leaves room for any real
/// directory while keeping index keys and log lines small.
pub const MAX_CHARS: usize = 1024;

/// Identifies the key function and the Unicode tables behind it. Stored keys were
/// computed with some version of it; when the store opens and finds another, it
/// computes them again (a crate update that moves to a new Unicode version changes
/// some keys, and stale keys would make names unfindable or uniqueness leak).
pub fn key_version() -> String {
    let (n1, n2, n3) = unicode_normalization::UNICODE_VERSION;
    let (f1, f2, f3) = caseless::UNICODE_VERSION;
    format!("compat-caseless-nfc-trim/1 normalization {n1}.{n2}.{n3} folding {f1}.{f2}.{f3}")
}

/// The key two userNames are compared by: equal keys, one name. Used for uniqueness,
/// `userName eq` lookups and filters, and every other place a userName is matched.
pub fn comparison_key(user_name: &str) -> String {
    // Folding first: NFKD turns some characters into spaces (U+3000, U+00A0), which
    // must not survive at the ends; trimming after keeps the key idempotent.
    fold(user_name).trim().to_owned()
}

/// The caseless, compatibility-normalised form without trimming, for substring
/// comparisons (`co`, `sw`, `ew`), where a space at the end of the literal counts.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        // NFKD, NFC and case folding leave ASCII alone except for the letters' case:
        // the common case costs one pass.
        return s.to_ascii_lowercase();
    }
    s.nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkd()
        .nfc()
        .collect()
}

/// Why a character is refused, when it is.
fn refused(c: char) -> Option<&'static str> {
    match c.general_category() {
        GeneralCategory::Control => Some("a control character"),
        GeneralCategory::Format => Some("an invisible format character"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("a line or paragraph separator")
        }
        _ => None,
    }
}

/// Refuses a userName no person has: blank, too long, or holding control or
/// format characters. `label` names the attribute as the request did.
pub fn check(label: &str, value: &str) -> Result<(), ScimError> {
    let chars = value.chars().count();
    if chars > MAX_CHARS {
        return Err(ScimError::invalid_value(format!(
            "{label} is {chars} characters long; at most {MAX_CHARS} are accepted"
        )));
    }
    if let Some((i, c, what)) = value
        .chars()
        .enumerate()
        .find_map(|(i, c)| refused(c).map(|what| (i, c, what)))
    {
        return Err(ScimError::invalid_value(format!(
            "{label} contains U+{:04X} ({what}) at character {}; control and format characters (such as NUL, zero-width joiners and byte-order marks) are not accepted in a {label}",
            u32::from(c),
            i + 1
        )));
    }
    if comparison_key(value).is_empty() {
        return Err(ScimError::invalid_value(format!(
            "{label} is empty or only white space"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use unicode_normalization::UnicodeNormalization;

    use super::*;

    #[test]
    fn look_alikes_are_one_name() {
        let same = [
            ("straße", "STRASSE"),
            ("Straße", "strasse"),
            ("ẞ", "ss"),
            ("e\u{301}lodie", "\u{e9}lodie"),
            ("ÉLODIE", "e\u{301}lodie"),
            ("ａｌｉｃｅ", "alice"),
            ("alice ", "alice"),
            (" Alice\u{3000}", "alice"),
            ("ﬁona", "FIONA"),
            ("Ⅸ", "ix"),
            ("ΣΑΣ", "σας"),
            ("İstanbul", "i\u{307}stanbul"),
        ];
        for (a, b) in same {
            assert_eq!(comparison_key(a), comparison_key(b), "{a:?} vs {b:?}");
        }
        let apart = [("alice", "alicia"), ("a lice", "alice"), ("ı", "i")];
        for (a, b) in apart {
            assert_ne!(comparison_key(a), comparison_key(b), "{a:?} vs {b:?}");
        }
        // The key is composed: what is stored in the index reads as text.
        assert_eq!(comparison_key("E\u{301}LODIE"), "\u{e9}lodie");
    }

    #[test]
    fn refused_values_name_the_code_point() {
        let cases = [
            (
                "al\u{0}ice",
                Some("U+0000 (a control character) at character 3"),
            ),
            (
                "ali\u{200d}ce",
                Some("U+200D (an invisible format character) at character 4"),
            ),
            ("\u{feff}alice", Some("U+FEFF")),
            ("alice\u{202e}", Some("U+202E")),
            ("al\u{200b}ice", Some("U+200B")),
            ("alice\n", Some("U+000A")),
            ("a\u{2028}b", Some("line or paragraph separator")),
            ("   ", Some("empty or only white space")),
            ("", Some("empty or only white space")),
            ("\u{3000}", Some("empty or only white space")),
            ("alice", None),
            ("Ann Lee", None),
            ("straße@firm.example", None),
            ("👩‍💻", Some("U+200D")),
        ];
        for (value, want) in cases {
            let got = check("userName", value).err().map(|e| e.detail);
            match want {
                None => assert_eq!(got, None, "{value:?}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{value:?}: {got:?}"
                ),
            }
        }
        let long = "a".repeat(MAX_CHARS + 1);
        assert!(
            check("userName", &long)
                .err()
                .is_some_and(|e| e.detail.contains("1025 characters"))
        );
        assert!(check("userName", &"é".repeat(MAX_CHARS)).is_ok());
    }

    /// A name and its lower-case spelling are always one name; its upper-case spelling
    /// need not be. Default case folding is not Turkish: dotless `ı` upper-cases to `I`,
    /// which is `i`. And U+0345 (combining ypogegrammeni) upper-cases to the letter Ι:
    /// out of canonical order it lands elsewhere than the folded mark, and Unicode's
    /// caseless match (which starts from NFD) keeps the two apart. The fuzz target
    /// found both.
    #[test]
    fn upper_case_spellings_that_are_other_names() {
        for s in ["\u{131}", "a\u{345}\u{31b}"] {
            assert_eq!(comparison_key(&s.to_lowercase()), comparison_key(s));
            assert_ne!(
                comparison_key(&s.to_uppercase()),
                comparison_key(s),
                "{s:?}"
            );
        }
        let nfd: String = "a\u{345}\u{31b}".nfd().collect();
        assert_eq!(comparison_key(&nfd.to_uppercase()), comparison_key(&nfd));
    }

    #[test]
    fn the_version_names_the_tables() {
        // A crate update with new Unicode tables must change the version, so stored
        // keys are recomputed.
        let (n1, n2, n3) = unicode_normalization::UNICODE_VERSION;
        let (f1, f2, f3) = caseless::UNICODE_VERSION;
        let v = key_version();
        assert!(v.contains(&format!("normalization {n1}.{n2}.{n3}")), "{v}");
        assert!(v.contains(&format!("folding {f1}.{f2}.{f3}")), "{v}");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    use super::*;

    /// Strings that exercise the interesting parts: letters with case and special
    /// folds, combining marks, compatibility forms, white space, controls, formats.
    /// The standard library's case tables follow the compiler's Unicode version, which
    /// can be newer than the folding tables the key uses (`key_version` names them):
    /// a script that gained case letters since (Beria Erfe, U+16EA0…, in Unicode 17)
    /// lower-cases in `str::to_lowercase` but folds to itself in the key. Such names
    /// are one name only once the folding tables catch up (and the store rekeys), so
    /// the properties below, which use `to_lowercase` and `to_uppercase` as their
    /// oracle, leave them out: the capitals, and the small letters whose capitals
    /// are new (U+16EBB upper-cases to U+16EA0, which the key does not fold back).
    fn newer_case(c: char) -> bool {
        let own = fold(&c.to_string());
        let lower: String = c.to_lowercase().collect();
        let upper: String = c.to_uppercase().collect();
        (lower != c.to_string() && fold(&lower) != own)
            || (upper != c.to_string() && fold(&upper) != own && fold(&upper.to_lowercase()) == own)
    }

    #[test]
    fn a_letter_cased_after_the_folding_tables_is_left_out() {
        // U+16EA0 BERIA ERFE CAPITAL LETTER ARKAB: found by the property below.
        if '\u{16ea0}'.to_lowercase().next() != Some('\u{16ea0}') {
            assert!(newer_case('\u{16ea0}'));
        }
        if '\u{16ebb}'.to_uppercase().next() != Some('\u{16ebb}') {
            assert!(newer_case('\u{16ebb}'));
        }
        assert!(!newer_case('A') && !newer_case('ẞ') && !newer_case('İ') && !newer_case('1'));
        assert!(!newer_case('a') && !newer_case('ß') && !newer_case('ſ') && !newer_case('ı'));
    }

    fn name() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            any::<char>()
                .prop_filter("cased only in a newer Unicode", |c| !newer_case(*c))
                .prop_map(String::from),
            "[a-zA-Z0-9@._-]{1,4}",
            prop::sample::select(vec![
                "ß", "ẞ", "ſ", "ﬁ", "ﬀ", "Σ", "ς", "İ", "ı", "\u{345}", "\u{301}", "\u{308}",
                "\u{1fb3}", "\u{1e9b}", "Ⅸ", "ａ", "Ａ", "\u{3000}", "\u{a0}", " ", "\u{b4}",
                "\u{a8}", "\u{200d}", "\u{feff}", "\u{0}", "\t", "ǅ", "Ǆ", "ﬅ", "ŉ", "ΐ",
            ])
            .prop_map(str::to_owned),
        ];
        prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn the_key_is_idempotent(s in name()) {
            let k = comparison_key(&s);
            prop_assert_eq!(comparison_key(&k), k.clone(), "{:?}", s);
            prop_assert_eq!(fold(&fold(&s)), fold(&s), "{:?}", s);
        }

        #[test]
        fn normal_forms_and_case_variants_are_one_name(s in name()) {
            let k = comparison_key(&s);
            let nfd: String = s.nfd().collect();
            let nfc: String = s.nfc().collect();
            let nfkc: String = s.nfkc().collect();
            prop_assert_eq!(comparison_key(&nfd), k.clone());
            prop_assert_eq!(comparison_key(&nfc), k.clone());
            prop_assert_eq!(comparison_key(&nfkc), k.clone());
            // Lower-casing never changes the name; upper-casing may (see below).
            prop_assert_eq!(comparison_key(&nfd.to_lowercase()), k.clone());
            let upper = nfd.to_uppercase();
            prop_assert_eq!(comparison_key(&upper.to_lowercase()), comparison_key(&upper));
            prop_assert_eq!(comparison_key(&format!(" {s}\u{3000}")), k);
        }

        #[test]
        fn ascii_takes_the_same_road_as_everything_else(s in "[ -~]{0,16}") {
            let slow: String = s.nfd().default_case_fold().nfkd().default_case_fold().nfkd().nfc().collect();
            prop_assert_eq!(fold(&s), slow);
        }

        #[test]
        fn checking_never_panics_and_accepted_names_have_a_key(s in any::<String>()) {
            if check("userName", &s).is_ok() {
                prop_assert!(!comparison_key(&s).is_empty());
            }
        }

        #[test]
        fn names_around_the_length_limit_are_refused_above_it(s in "a{1000,1100}") {
            prop_assert_eq!(check("userName", &s).is_ok(), s.chars().count() <= MAX_CHARS);
        }
    }
}
