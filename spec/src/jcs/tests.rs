use super::canonical::{utf16_order, write_number};
use super::parser::LINEAR_DUPLICATE_SEARCH;
use super::*;

fn canonical(input: &str) -> String {
    canonicalize_bytes(input.as_bytes(), Limits::default()).expect("valid JSON")
}

// RFC 8785 Appendix B: IEEE 754 doubles (as bit patterns) and their canonical text.
#[test]
fn numbers_match_rfc8785_appendix_b() {
    let vectors: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for (bits, expected) in vectors {
        let mut out = String::new();
        write_number(f64::from_bits(*bits), &mut out);
        assert_eq!(&out, expected, "bits {bits:#018x}");
    }
}

// RFC 8785 §3.2.2 example (the "numbers", "string" and "literals" object) and its output.
#[test]
fn canonicalizes_rfc8785_section_3_2_2_example() {
    let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50,
          2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
    let expected = concat!(
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"#,
        r#""string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
    assert_eq!(canonical(input), expected);
}

// RFC 8785 §3.2.3: sorting by UTF-16 code units, including a name outside the BMP.
#[test]
fn sorts_member_names_by_utf16_code_units_as_rfc8785_section_3_2_3() {
    let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
    let value = parse(input.as_bytes(), Limits::default()).expect("valid JSON");
    let canonical = canonicalize(&value);
    let order: Vec<&str> = [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]
    .to_vec();
    let mut last = 0;
    for name in order {
        let at = canonical.find(name).expect("every member is kept");
        assert!(at >= last, "{name} out of order in {canonical}");
        last = at;
    }
}

#[test]
fn canonical_form_is_a_fixed_point() {
    let once = canonical(r#"{ "b" : [1, 2.50, {"z":null, "a":"\u00e9"}], "a": -0 }"#);
    assert_eq!(once, r#"{"a":0,"b":[1,2.5,{"a":"é","z":null}]}"#);
    assert_eq!(canonical(&once), once);
}

#[test]
fn refuses_duplicate_member_names() {
    let error = parse(br#"{"a":1,"b":2,"a":3}"#, Limits::default()).unwrap_err();
    assert!(matches!(error, JsonError::DuplicateName { ref name, .. } if name == "a"));
    // Names equal after unescaping are duplicates too.
    assert!(matches!(
        parse(br#"{"a":1,"\u0061":2}"#, Limits::default()),
        Err(JsonError::DuplicateName { .. })
    ));
}

#[test]
fn finds_duplicate_names_in_small_and_large_objects() {
    for count in [
        1,
        LINEAR_DUPLICATE_SEARCH - 1,
        LINEAR_DUPLICATE_SEARCH,
        LINEAR_DUPLICATE_SEARCH + 1,
        40,
    ] {
        let members: Vec<String> = (0..count).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let object = format!("{{{}}}", members.join(","));
        match parse(object.as_bytes(), Limits::default()) {
            Ok(Value::Object(parsed)) => assert_eq!(parsed.len(), count),
            other => panic!("{count} distinct members: {other:?}"),
        }
        for again in [0, count / 2, count - 1] {
            let object = format!("{{{},\"k{again}\":true}}", members.join(","));
            assert!(
                matches!(
                    parse(object.as_bytes(), Limits::default()),
                    Err(JsonError::DuplicateName { ref name, .. }) if *name == format!("k{again}")
                ),
                "k{again} twice among {count}"
            );
        }
    }
}

#[test]
fn refuses_invalid_utf8_and_lone_surrogates() {
    assert!(matches!(
        parse(b"\"\xff\"", Limits::default()),
        Err(JsonError::InvalidUtf8 { offset: 1 })
    ));
    for input in [r#""\ud800""#, r#""\udc00""#, r#""\ud800\u0041""#] {
        assert!(
            matches!(
                parse(input.as_bytes(), Limits::default()),
                Err(JsonError::LoneSurrogate { .. })
            ),
            "{input}"
        );
    }
}

#[test]
fn refuses_integers_a_double_cannot_hold_and_non_finite_numbers() {
    assert!(parse(b"9007199254740991", Limits::default()).is_ok());
    assert!(matches!(
        parse(b"9007199254740993", Limits::default()),
        Err(JsonError::BadNumber { .. })
    ));
    assert!(matches!(
        parse(b"1e400", Limits::default()),
        Err(JsonError::BadNumber { .. })
    ));
    assert!(matches!(
        parse(b"1e20", Limits::default()),
        Err(JsonError::BadNumber { .. })
    ));
    assert!(parse(b"1.5e20", Limits::default()).is_err());
    assert!(parse(b"1e21", Limits::default()).is_ok());
    assert!(parse(b"1000000000000000000000", Limits::default()).is_err());
    assert!(parse(b"1.5e-20", Limits::default()).is_ok());
    for bad in ["01", "1.", ".5", "-", "+1", "1e", "NaN", "Infinity", "0x10"] {
        assert!(parse(bad.as_bytes(), Limits::default()).is_err(), "{bad}");
    }
}

#[test]
fn enforces_depth_size_and_length_limits() {
    let deep = "[".repeat(33) + &"]".repeat(33);
    assert!(matches!(
        parse(deep.as_bytes(), Limits::default()),
        Err(JsonError::TooDeep { limit: 32, .. })
    ));
    let ok_depth = "[".repeat(32) + &"]".repeat(32);
    assert!(parse(ok_depth.as_bytes(), Limits::default()).is_ok());
    let limits = Limits {
        max_bytes: 100,
        max_depth: 4,
        max_string_bytes: 5,
        max_container_len: 3,
    };
    assert!(matches!(
        parse(&[b' '; 101], limits),
        Err(JsonError::TooLarge { .. })
    ));
    assert!(matches!(
        parse(br#""abcdef""#, limits),
        Err(JsonError::TooLong { what: "string", .. })
    ));
    assert!(matches!(
        parse(b"[1,2,3,4]", limits),
        Err(JsonError::TooLong { what: "array", .. })
    ));
    assert!(matches!(
        parse(br#"{"a":1,"b":2,"c":3,"d":4}"#, limits),
        Err(JsonError::TooLong { what: "object", .. })
    ));
}

#[test]
fn refuses_malformed_documents_with_the_offset() {
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\"}",
        "{\"a\":1,}",
        "{a:1}",
        "\"\t\"",
        "[1] [2]",
        "tru",
        "\"\\x\"",
        "\"abc",
    ] {
        let error = parse(bad.as_bytes(), Limits::default());
        assert!(error.is_err(), "{bad:?} was accepted");
    }
    assert_eq!(
        parse(b"[1, x]", Limits::default()),
        Err(JsonError::Unexpected {
            offset: 4,
            expected: "a JSON value",
            found: "'x'".to_string()
        })
    );
}

// Strings without an escape are borrowed from the input, the others unescaped into a buffer
// sized beforehand: both are held to the same limit, counted after unescaping, and refused
// at the run of characters that crosses it.
#[test]
fn strings_read_the_same_with_or_without_escapes_up_to_the_limit() {
    let limits = Limits {
        max_string_bytes: 8,
        ..Limits::default()
    };
    let read = |json: &str| parse(json.as_bytes(), limits);
    let accepted: &[(&str, &str)] = &[
        (r#""abcdefgh""#, "abcdefgh"),
        (r#""""#, ""),
        (r#""abcdefg\n""#, "abcdefg\n"),
        (r#""\u00e9\u00e9\u00e9\u00e9""#, "éééé"),
        (r#""ab\ud83d\ude00cd""#, "ab😀cd"),
        (r#""\\\\\\\\\\\\\\\\""#, r"\\\\\\\\"),
        (r#""éééé""#, "éééé"),
    ];
    for (json, text) in accepted {
        assert_eq!(read(json), Ok(Value::String(text.to_string())), "{json}");
    }
    let too_long = |offset: usize, what: &'static str| {
        Err(JsonError::TooLong {
            offset,
            what,
            limit: 8,
        })
    };
    assert_eq!(read(r#""abcdefghi""#), too_long(1, "string"));
    assert_eq!(read(r#""ééééé""#), too_long(1, "string"));
    assert_eq!(read(r#""\u0061bcdefghi""#), too_long(7, "string"));
    assert_eq!(read(r#""abcdefgh\n""#), too_long(11, "string"));
    assert_eq!(read(r#""abcdefgh\n"#), too_long(11, "string"));
    assert!(read(r#"{"abcdefgh":1}"#).is_ok());
    assert_eq!(read(r#"{"abcdefghi":1}"#), too_long(2, "member name"));
    assert_eq!(read(r#"{"a\u0062cdefghi":1}"#), too_long(9, "member name"));
}

#[test]
fn an_object_read_with_borrowed_names_is_the_object_parse_reads() {
    let large: Vec<String> = (0..40).map(|i| format!(r#""k\u00{i:02}":{i}"#)).collect();
    let large_again = format!(r#"{{{},"k\u0010":0}}"#, large.join(","));
    let large = format!("{{{}}}", large.join(","));
    let documents = [
        r#" {"a": 1, "b\u0063": [true, {"d": null}], "\n": "e"} "#,
        "{}",
        r#"{"a":1,"\u0061":2}"#,
        r#"{"\u0061":1,"a":2}"#,
        r#"[{"a":1}]"#,
        r#""not an object""#,
        r#"{"a":1} x"#,
        r#"{"a":1"#,
        r#"{"a":[1,]}"#,
        &large,
        &large_again,
    ];
    for document in documents {
        let borrowed = parse_object(document.as_bytes(), Limits::default(), 4).map(|members| {
            members.map(|members| {
                let owned = members
                    .into_iter()
                    .map(|(name, value)| (name.into(), value));
                Value::Object(owned.collect())
            })
        });
        match parse(document.as_bytes(), Limits::default()) {
            Ok(value @ Value::Object(_)) => assert_eq!(borrowed, Ok(Some(value)), "{document}"),
            Ok(_) => assert_eq!(borrowed, Ok(None), "{document}"),
            Err(error) => assert_eq!(borrowed, Err(error), "{document}"),
        }
    }
}

proptest::proptest! {
    #[test]
    fn canonical_numbers_read_back_as_the_same_double(bits in proptest::prelude::any::<u64>()) {
        let number = f64::from_bits(bits);
        proptest::prop_assume!(number.is_finite());
        let mut text = String::new();
        write_number(number, &mut text);
        let back: f64 = text.parse().expect("canonical numbers are valid JSON numbers");
        proptest::prop_assert!(back == number, "{} -> {} -> {}", number, text, back);
    }

    // Integers a double holds exactly are written without ryu-js, as it would write them.
    #[test]
    fn safe_integers_are_written_as_the_ecmascript_algorithm_writes_them(
        integer in -9_007_199_254_740_991i64..=9_007_199_254_740_991,
        digits in 0u32..16,
    ) {
        for number in [integer as f64, (integer % 10i64.pow(digits)) as f64] {
            if number != 0.0 {
                let mut written = String::new();
                write_number(number, &mut written);
                let mut ryu = ryu_js::Buffer::new();
                proptest::prop_assert_eq!(written.as_str(), ryu.format_finite(number));
            }
        }
    }

    #[test]
    fn strings_and_name_order_follow_their_definitions(
        left in proptest::prelude::any::<String>(),
        right in "[\\x00-\\x7f]{0,8}|\\PC{0,8}",
    ) {
        // The escapes of RFC 8785 §3.2.2.2, one character at a time.
        let mut expected = String::from("\"");
        for character in left.chars() {
            match character {
                '"' => expected.push_str("\\\""),
                '\\' => expected.push_str("\\\\"),
                '\u{08}' => expected.push_str("\\b"),
                '\u{0c}' => expected.push_str("\\f"),
                '\n' => expected.push_str("\\n"),
                '\r' => expected.push_str("\\r"),
                '\t' => expected.push_str("\\t"),
                control if (control as u32) < 0x20 => {
                    expected.push_str(&format!("\\u{:04x}", control as u32))
                }
                other => expected.push(other),
            }
        }
        expected.push('"');
        let mut written = String::new();
        write_string(&left, &mut written);
        proptest::prop_assert_eq!(&written, &expected);
        let back: String = serde_json::from_str(&written).expect("a JSON string");
        proptest::prop_assert_eq!(&back, &left);
        for (a, b) in [(&left, &right), (&right, &left), (&right, &right)] {
            proptest::prop_assert_eq!(
                utf16_order(a, b),
                a.encode_utf16().cmp(b.encode_utf16())
            );
        }
    }

    #[test]
    fn canonicalization_is_idempotent(text in "[ -~]{0,64}", number in -1e300f64..1e300) {
        let document = format!(
            r#"{{"x":{:e},"s":{},"n":[{:e},{{"b":true,"a":null}}]}}"#,
            number,
            serde_json::to_string(&text).expect("a string serialises"),
            number / 3.0
        );
        let once = canonical(&document);
        proptest::prop_assert_eq!(canonical(&once), once);
    }
}
