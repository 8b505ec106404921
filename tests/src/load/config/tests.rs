use super::*;

fn loopback_config() -> LoadConfig {
    LoadConfig::new(
        Target::parse("http://127.0.0.1:8080", false).expect("loopback target"),
        Workload::Add {
            leaf_size: 256,
            leaf_kind: LeafKind::Unique,
        },
    )
}

#[test]
fn reads_loopback_targets_in_every_spelling() {
    let cases = [
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "127.0.0.1:8080"),
        ("http://localhost:9000", "127.0.0.1:9000"),
        ("http://[::1]:8080", "[::1]:8080"),
        ("http://127.0.0.2", "127.0.0.2:80"),
        ("http://[::1]", "[::1]:80"),
    ];
    for (url, addr) in cases {
        let target = Target::parse(url, false).expect(url);
        assert_eq!(
            target.addr,
            addr.parse::<SocketAddr>().expect("addr"),
            "{url}"
        );
    }
    let target = Target::parse("http://localhost:9000", false).expect("localhost");
    assert_eq!(target.authority, "localhost:9000");
    assert!(!target.tls);
    let secure = Target::parse("https://127.0.0.1", false).expect("https");
    assert!(secure.tls);
    assert_eq!(
        secure.addr,
        "127.0.0.1:443".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(secure.to_string(), "https://127.0.0.1");
}

#[test]
fn refuses_remote_targets_unless_allowed() {
    assert_eq!(
        Target::parse("http://192.0.2.7:8080", false),
        Err(ConfigError::RemoteTargetRefused(
            "192.0.2.7:8080".parse().expect("addr")
        ))
    );
    assert!(Target::parse("http://192.0.2.7:8080", true).is_ok());
}

#[test]
fn refuses_names_paths_other_schemes_and_unspecified_addresses() {
    for url in [
        "ftp://127.0.0.1:8443",
        "http://example.com:80",
        "http://127.0.0.1:8080/add",
        "http://user@127.0.0.1:8080",
        "http://0.0.0.0:8080",
        "http://127.0.0.1:0",
        "http://127.0.0.1:99999",
        "http://",
        "",
    ] {
        assert!(
            matches!(Target::parse(url, true), Err(ConfigError::BadTarget { .. })),
            "{url}"
        );
    }
}

#[test]
fn accepts_the_default_config() {
    assert_eq!(loopback_config().validate(), Ok(()));
    assert_eq!(loopback_config().path, "/add");
}

#[test]
fn refuses_durations_over_an_hour() {
    let mut config = loopback_config();
    config.duration = MAX_DURATION + Duration::from_millis(1);
    assert!(matches!(
        config.validate(),
        Err(ConfigError::DurationOutOfRange {
            what: "duration",
            ..
        })
    ));
    config.duration = MAX_DURATION;
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn refuses_rates_over_ten_million_per_second_and_nonsense_rates() {
    let mut config = loopback_config();
    for rate in [MAX_RATE * 1.01, 0.0, -5.0, f64::NAN, f64::INFINITY] {
        config.pacing = Pacing::FixedRate {
            requests_per_second: rate,
        };
        assert!(
            matches!(config.validate(), Err(ConfigError::BadRate(_))),
            "{rate}"
        );
    }
    config.pacing = Pacing::FixedRate {
        requests_per_second: MAX_RATE,
    };
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn refuses_unique_leaves_too_small_to_hold_the_counter() {
    let mut config = loopback_config();
    config.workload = Workload::Add {
        leaf_size: 15,
        leaf_kind: LeafKind::Unique,
    };
    assert!(matches!(
        config.validate(),
        Err(ConfigError::OutOfRange { min: 16, .. })
    ));
    config.workload = Workload::Add {
        leaf_size: 1,
        leaf_kind: LeafKind::Duplicate,
    };
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn refuses_batches_whose_body_would_be_too_large() {
    let mut config = loopback_config();
    config.workload = Workload::AddBatch {
        leaf_size: 1 << 20,
        leaves_per_batch: 65,
        leaf_kind: LeafKind::Unique,
    };
    assert!(matches!(
        config.validate(),
        Err(ConfigError::OutOfRange {
            what: "batch body (bytes)",
            ..
        })
    ));
}

#[test]
fn refuses_bad_connections_paths_and_tokens() {
    let mut config = loopback_config();
    config.connections = 0;
    assert!(config.validate().is_err());
    config.connections = MAX_CONNECTIONS + 1;
    assert!(config.validate().is_err());

    let mut config = loopback_config();
    config.path = "add".into();
    assert!(matches!(
        config.validate(),
        Err(ConfigError::BadPath { .. })
    ));
    config.path = "/a b".into();
    assert!(matches!(
        config.validate(),
        Err(ConfigError::BadPath { .. })
    ));

    let mut config = loopback_config();
    config.bearer_token = Some("two words".into());
    assert_eq!(config.validate(), Err(ConfigError::BadToken));
    config.bearer_token = Some("s3cr3t-token".into());
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn reads_durations_with_units() {
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    for bad in ["", "s", "ten", "5 days", "-1s", "1e9h", "2d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}
