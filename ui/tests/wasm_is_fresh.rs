//! The committed `ui/assets/cairn_verify.wasm`, which the binary embeds and the browser runs, is
//! exactly what `ui/wasm/build.sh` makes from this source (ui/wasm and cairn-spec): the verdicts
//! the page shows are computed by the code that is reviewed and tested here, not by a stale or
//! foreign module. The build is reproducible (the script says how), so byte equality is the test.

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_module_is_byte_identical_to_a_fresh_build() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A target directory of this test's own: the outer cargo holds the lock of its own.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cairn-ui-wasm");
    let fresh = target_dir.join("fresh-cairn_verify.wasm");
    let status = Command::new("bash")
        .arg(manifest.join("wasm/build.sh"))
        .arg(&fresh)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("bash runs ui/wasm/build.sh");
    assert!(status.success(), "ui/wasm/build.sh failed: {status}");
    let built = std::fs::read(&fresh).expect("the fresh module");
    let committed =
        std::fs::read(manifest.join("assets/cairn_verify.wasm")).expect("the committed module");
    assert!(
        built == committed,
        "ui/assets/cairn_verify.wasm ({} bytes) is not what ui/wasm/build.sh builds from this \
         source ({} bytes): run ui/wasm/build.sh and commit the result",
        committed.len(),
        built.len()
    );
}
