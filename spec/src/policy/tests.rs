use super::*;
use crate::cosignature::CosignatureSigner;
use crate::note::{Ed25519Signer, KeyName};

fn log_vkey(name: &str, seed: u8) -> String {
    let name = KeyName::new(name).expect("valid key name");
    Ed25519Signer::from_seed(name, [seed; 32])
        .verifier()
        .to_vkey()
}

fn witness_vkey(name: &str, seed: u8) -> String {
    let name = KeyName::new(name).expect("valid key name");
    CosignatureSigner::from_seed(name, [seed; 32])
        .verifier()
        .to_vkey()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_string()).collect()
}

/// The two-level example of C2SP tlog-policy ("Example policy"), with real keys.
fn two_level_policy() -> Policy {
    let mut text = format!("log {}\n\n", log_vkey("example.com/log", 1));
    for (index, name) in ["X1", "X2", "X3", "Y1", "Y2", "Y3"].iter().enumerate() {
        text.push_str(&format!(
            "witness {name} {}\n",
            witness_vkey(&format!("{name}.example"), 10 + index as u8)
        ));
    }
    text.push_str("group X-witnesses 2 X1 X2 X3\n");
    text.push_str("group Y-witnesses any Y1 Y2 Y3\n");
    text.push_str("group X-and-Y all X-witnesses Y-witnesses\n");
    text.push_str("  # a comment, after whitespace\nquorum X-and-Y\n");
    Policy::parse(text.as_bytes()).expect("the example policy is valid")
}

#[test]
fn evaluates_the_tlog_policy_two_level_example() {
    let policy = two_level_policy();
    assert_eq!(policy.logs.len(), 1);
    assert_eq!(policy.witnesses.len(), 6);
    assert!(policy.log("example.com/log").is_some());
    assert!(policy.log("other.example/log").is_none());
    assert!(policy.quorum_met(&names(&["X1", "X3", "Y2"])));
    assert!(policy.quorum_met(&names(&["X1", "X2", "X3", "Y1", "Y2", "Y3"])));
    assert!(!policy.quorum_met(&names(&["X1", "Y2", "Y3"])));
    assert!(!policy.quorum_met(&names(&["X1", "X2"])));
    assert!(!policy.quorum_met(&names(&[])));
    // Group names are not witnesses: naming them does not satisfy anything.
    assert!(!policy.quorum_met(&names(&["X-witnesses", "Y-witnesses"])));
    assert_eq!(policy.tsa_quorum, 0);
}

#[test]
fn quorum_none_needs_no_cosignature() {
    let text = format!("log {}\nquorum none\n", log_vkey("example.com/log", 1));
    let policy = Policy::parse(text.as_bytes()).expect("valid");
    assert_eq!(policy.quorum, Quorum::None);
    assert!(policy.quorum_met(&BTreeSet::new()));
}

#[test]
fn tsa_lines_set_anchors_and_a_default_quorum_of_one() {
    let first = crate::example::test_tsa(1).root_der;
    let second = crate::example::test_tsa(2).root_der;
    let encode = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let text = format!(
        "log {}\nquorum none\ntsa acme {} https://tsa.example/\ntsa other {}\n",
        log_vkey("example.com/log", 1),
        encode(&first),
        encode(&second)
    );
    let policy = Policy::parse(text.as_bytes()).expect("valid");
    assert_eq!(policy.tsas.len(), 2);
    assert_eq!(policy.tsas[0].anchor_der, first);
    assert_eq!(policy.tsas[0].url.as_deref(), Some("https://tsa.example/"));
    assert_eq!(policy.tsa_quorum, 1);
    let text = text + "tsa-quorum 2\n";
    assert_eq!(Policy::parse(text.as_bytes()).expect("valid").tsa_quorum, 2);
}

#[test]
fn refuses_every_malformation_with_its_line() {
    let log = log_vkey("example.com/log", 1);
    let w1 = witness_vkey("w1.example", 2);
    let w2 = witness_vkey("w2.example", 3);
    let anchor =
        base64::engine::general_purpose::STANDARD.encode(crate::example::test_tsa(3).root_der);
    type Check = fn(&PolicyError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        (format!("log {log}\n"), |e| {
            matches!(e, PolicyError::QuorumCount { found: 0 })
        }),
        (format!("log {log}\nquorum none\nquorum none\n"), |e| {
            matches!(e, PolicyError::QuorumCount { found: 2 })
        }),
        (format!("log {log}\nquorum none"), |e| {
            matches!(e, PolicyError::MissingFinalNewline)
        }),
        (format!("log {log}\nquorum w1\n"), |e| {
            matches!(e, PolicyError::Undefined { line: 2, .. })
        }),
        ("quorum g\ngroup g any w1\n".to_string(), |e| {
            matches!(e, PolicyError::Undefined { line: 1, .. })
        }),
        (
            format!("witness w1 {w1}\nwitness w1 {w2}\nquorum w1\n"),
            |e| matches!(e, PolicyError::Duplicate { line: 2, .. }),
        ),
        (
            format!("witness w1 {w1}\nwitness w2 {w1}\nquorum w1\n"),
            |e| matches!(e, PolicyError::Duplicate { line: 2, .. }),
        ),
        (
            format!("witness w1 {w1}\nwitness w2 {w2}\ngroup g 3 w1 w2\nquorum g\n"),
            |e| matches!(e, PolicyError::BadThreshold { line: 3, .. }),
        ),
        (
            format!("witness w1 {w1}\nwitness w2 {w2}\ngroup g 0 w1 w2\nquorum g\n"),
            |e| matches!(e, PolicyError::BadThreshold { line: 3, .. }),
        ),
        (
            format!("witness w1 {w1}\ngroup g any w1 w1\nquorum g\n"),
            |e| matches!(e, PolicyError::Duplicate { line: 2, .. }),
        ),
        (
            format!("witness w1 {w1}\ngroup g any none\nquorum g\n"),
            |e| matches!(e, PolicyError::Undefined { line: 2, .. }),
        ),
        (format!("witness none {w1}\nquorum none\n"), |e| {
            matches!(e, PolicyError::Duplicate { line: 1, .. })
        }),
        // A log key is Ed25519 (type 0x01); a cosignature key (0x04) is not a log key.
        (format!("log {w1}\nquorum none\n"), |e| {
            matches!(e, PolicyError::BadKey { line: 1, .. })
        }),
        (format!("witness w1 {log}\nquorum none\n"), |e| {
            matches!(e, PolicyError::BadKey { line: 1, .. })
        }),
        ("logs x\nquorum none\n".to_string(), |e| {
            matches!(e, PolicyError::UnknownLineType { line: 1, .. })
        }),
        (format!("log {log}\x0b\nquorum none\n"), |e| {
            matches!(
                e,
                PolicyError::ControlCharacter {
                    line: 1,
                    byte: 0x0b
                }
            )
        }),
        ("quorum none\ntsa a !!!\n".to_string(), |e| {
            matches!(e, PolicyError::BadAnchor { line: 2, .. })
        }),
        // Base64 of bytes that are not a certificate.
        ("quorum none\ntsa a AQID\n".to_string(), |e| {
            matches!(e, PolicyError::BadAnchor { line: 2, .. })
        }),
        (
            format!("quorum none\ntsa a {anchor}\ntsa-quorum 2\n"),
            |e| {
                matches!(
                    e,
                    PolicyError::TsaQuorumTooLarge {
                        found: 2,
                        available: 1
                    }
                )
            },
        ),
        ("quorum none\ntsa-quorum 01\n".to_string(), |e| {
            matches!(e, PolicyError::Malformed { line: 2, .. })
        }),
        ("quorum none extra\n".to_string(), |e| {
            matches!(e, PolicyError::Malformed { line: 1, .. })
        }),
    ];
    for (text, check) in cases {
        let error = Policy::parse(text.as_bytes()).expect_err(&text);
        assert!(check(&error), "{text:?} gave {error:?}");
    }
    assert!(matches!(
        Policy::parse(&vec![b'#'; MAX_POLICY_BYTES + 1]),
        Err(PolicyError::TooLarge { .. })
    ));
}

#[test]
fn the_documented_example_parses_and_means_what_the_page_says() {
    let page = include_str!("../../docs/policy.md");
    let marker = "## Example\n\n```text\n";
    let start = page.find(marker).expect("the page has an example") + marker.len();
    let end = start + page[start..].find("```").expect("closed block");
    let policy = Policy::parse(&page.as_bytes()[start..end]).expect("the example is valid");
    assert!(policy.log("audit.acme.example/log").is_some());
    assert!(policy.quorum_met(&names(&["w1", "w3"])));
    assert!(!policy.quorum_met(&names(&["w2"])));
    assert_eq!(policy.tsa_quorum, 0);
}
