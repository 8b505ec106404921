use super::setup::*;
use super::*;

#[test]
fn pem_body_is_the_base64_of_the_der() {
    let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAwQF\n-----END CERTIFICATE-----\n";
    assert_eq!(pem_base64(pem), "AAECAwQF");
}

#[test]
fn consecutive_ports_refuse_to_overflow() {
    assert!(pick_addrs(Some(65534), 3).is_err());
    let addrs = pick_addrs(Some(7480), 3).expect("fits");
    assert_eq!(addrs[2].port(), 7482);
}

#[test]
fn system_ports_are_distinct() {
    let addrs = pick_addrs(None, 6).expect("picks");
    let mut ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 6);
}

#[test]
fn a_used_directory_without_layout_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("something"), b"x").expect("writes");
    let options = Options::new(dir.path());
    let error =
        initialise(dir.path(), &options, &Binaries::in_dir(dir.path())).expect_err("refused");
    assert!(error.to_string().contains("not empty"), "{error}");
}
