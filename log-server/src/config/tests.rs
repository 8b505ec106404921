use super::access::parse_fingerprint;
use super::*;

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn settings(text: &str) -> Settings {
    toml::from_str(text).expect("parses")
}

#[test]
fn reads_fingerprints_as_openssl_prints_them() {
    let plain = parse_fingerprint(DIGEST).expect("plain hex");
    let colons: Vec<String> = DIGEST
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect();
    let openssl = format!("sha256 Fingerprint={}", colons.join(":"));
    assert_eq!(parse_fingerprint(&openssl), Some(plain));
    assert_eq!(parse_fingerprint(&colons.join(":")), Some(plain));
    for bad in ["", "AB:CD", &DIGEST[1..], &format!("+{}", &DIGEST[1..])] {
        assert_eq!(parse_fingerprint(bad), None, "{bad:?}");
    }
}

#[test]
fn principals_by_certificate_need_a_client_ca() {
    let text = format!(
        "[[principals]]\nname = \"payments\"\nrole = \"producer\"\n\
         client_cert_sha256 = \"{DIGEST}\"\n"
    );
    let error = settings(&text).credentials().expect_err("no client CA");
    assert!(error.to_string().contains("tls_client_ca_file"), "{error}");
    let with_ca = format!("{text}\n[http]\ntls_client_ca_file = \"/ca.pem\"\n");
    let credentials = settings(&with_ca).credentials().expect("valid");
    assert_eq!(credentials.client_certificates.len(), 1);
    assert!(credentials.tokens.is_empty());
    let neither = "[[principals]]\nname = \"x\"\nrole = \"reader\"\n";
    assert!(settings(neither).credentials().is_err());
}

#[test]
fn rate_limits_name_configured_principals_and_are_positive() {
    let producer = format!("[[producers]]\nname = \"billing\"\ntoken_sha256 = \"{DIGEST}\"\n");
    let good = format!(
        "{producer}[rate_limits]\nrequests_per_second = 10\n\
         [rate_limits.principals.billing]\nrequests_per_second = 100\nburst = 500\n"
    );
    let limits = settings(&good).credentials().expect("valid").rate_limits;
    assert_eq!(
        limits.default.map(|rate| rate.requests_per_second),
        Some(10)
    );
    assert_eq!(limits.principals["billing"].burst, Some(500));
    for bad in [
        format!("{producer}[rate_limits.principals.biling]\nrequests_per_second = 1\n"),
        format!("{producer}[rate_limits]\nrequests_per_second = 0\n"),
        format!("{producer}[rate_limits]\nburst = 5\n"),
        format!("{producer}[rate_limits]\nrequests_per_second = 5\nburst = 0\n"),
    ] {
        assert!(settings(&bad).credentials().is_err(), "{bad}");
    }
}

fn scaled_tables(settings: &Settings) -> Result<Option<ScaledSettings>, ConfigError> {
    storage::resolve(
        settings.storage.unwrap_or_default(),
        settings.postgres.as_ref(),
        settings.bucket.as_ref(),
        crate::storage::StoreLimits::default(),
    )
}

#[test]
fn the_scaled_backend_needs_both_tables_and_the_embedded_one_neither() {
    let dir = tempfile::tempdir().expect("dir");
    let credentials = dir.path().join("s3");
    std::fs::write(&credentials, "id\nsecret\n").expect("write");
    std::fs::set_permissions(
        &credentials,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let postgres = "[postgres]\nurl = \"host=127.0.0.1 user=cairn dbname=cairn\"\n";
    let bucket = format!(
        "[bucket]\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"log\"\n\
         credentials_file = {:?}\nprefix = \"logs/a\"\n",
        credentials.display().to_string()
    );
    let good = settings(&format!("storage = \"scaled\"\n{postgres}{bucket}"));
    let scaled = scaled_tables(&good).expect("valid").expect("scaled");
    assert_eq!(scaled.bucket.access_key_id, "id");
    assert_eq!(scaled.bucket.secret_access_key, "secret");
    assert_eq!(scaled.bucket.prefix, "logs/a");
    assert_eq!(scaled.lease_term, Duration::from_secs(5));
    assert!(
        !format!("{scaled:?}").contains("secret\""),
        "no secret printed"
    );

    for (text, names) in [
        (format!("storage = \"scaled\"\n{bucket}"), "[postgres]"),
        (format!("storage = \"scaled\"\n{postgres}"), "[bucket]"),
        (postgres.to_string(), "embedded"),
        (
            format!("storage = \"scaled\"\n{postgres}lease_term_ms = 10\n{bucket}"),
            "lease_term_ms",
        ),
        (
            format!(
                "storage = \"scaled\"\n{postgres}password_env = \"CAIRN_TEST_UNSET_VARIABLE\"\n{bucket}"
            ),
            "CAIRN_TEST_UNSET_VARIABLE",
        ),
    ] {
        let error = scaled_tables(&settings(&text)).expect_err(&text);
        assert!(error.to_string().contains(names), "{text}: {error}");
    }
    // A credentials file others may read is refused.
    std::fs::set_permissions(
        &credentials,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    let error = scaled_tables(&good).expect_err("loose mode");
    assert!(error.to_string().contains("chmod 600"), "{error}");
}
