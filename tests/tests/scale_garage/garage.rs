//! A three-node Garage cluster on loopback for the scale test, run as outside processes (Garage
//! is AGPL: it is never linked): every node replicates every object (`replication_factor =
//! 3`), so a write needs two nodes of three and survives one node down. Node 1 serves the S3
//! API the front-ends write to and the bucket as a static website (`[s3_web]`) the monitor
//! reads the log from.
//!
//! The nodes are made with a config each, joined (`garage node connect`), given a layout (one
//! zone, 1 GB each) and then a key and the bucket. Once the nodes know each other's ids, every
//! config lists the others in `bootstrap_peers`, so a node stopped and started again rejoins
//! the cluster by itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The region Garage checks requests are signed for (its `s3_region`).
pub const REGION: &str = "garage";
/// The bucket the log is written to.
pub const BUCKET: &str = "cairn-log";
/// The bucket's alias that the website endpoint serves at `http://localhost:<port>/`: Garage
/// picks a website's bucket by the request's host name.
const WEB_ALIAS: &str = "localhost";
/// How long the cluster may take to come up or to answer a command.
const PATIENCE: Duration = Duration::from_secs(120);

/// One Garage node: its config, its ports and its process while it runs.
struct Node {
    config: PathBuf,
    log: PathBuf,
    rpc_port: u16,
    child: Option<Child>,
}

/// A running three-node cluster; its processes are killed when it is dropped.
pub struct Garage {
    bin: PathBuf,
    nodes: Vec<Node>,
    /// Node 1's S3 API port.
    s3_port: u16,
    /// Node 1's website port.
    web_port: u16,
}

impl Drop for Garage {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The text of node `number`'s config.
fn config_text(dir: &Path, secret: &str, ports: (u16, u16, u16), peers: &[String]) -> String {
    let (rpc, s3, web) = ports;
    let peers: Vec<String> = peers.iter().map(|peer| format!("{peer:?}")).collect();
    format!(
        "metadata_dir = {meta:?}\ndata_dir = {data:?}\ndb_engine = \"sqlite\"\n\
         replication_factor = 3\n\
         rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
         rpc_secret = \"{secret}\"\nbootstrap_peers = [{peers}]\n\n\
         [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
         root_domain = \".s3.garage.localhost\"\n\n\
         [s3_web]\nbind_addr = \"127.0.0.1:{web}\"\nroot_domain = \".web.garage.localhost\"\n\
         index = \"index.html\"\n",
        meta = dir.join("meta").display().to_string(),
        data = dir.join("data").display().to_string(),
        peers = peers.join(", "),
    )
}

impl Garage {
    /// Makes and starts the cluster in `dir`, joins the nodes, applies a layout and makes the
    /// key and the bucket; answers the cluster and the key (id, secret).
    pub async fn start(bin: &Path, dir: &Path) -> (Garage, String, String) {
        let secret = random_hex(32);
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        for number in 1..=3 {
            let node_dir = dir.join(format!("garage-{number}"));
            std::fs::create_dir_all(&node_dir).expect("the node's directory");
            let node_ports = (free_port(), free_port(), free_port());
            let config = node_dir.join("garage.toml");
            std::fs::write(&config, config_text(&node_dir, &secret, node_ports, &[]))
                .expect("write the node's config");
            nodes.push(Node {
                config,
                log: node_dir.join("garage.log"),
                rpc_port: node_ports.0,
                child: None,
            });
            ports.push(node_ports);
        }
        let mut garage = Garage {
            bin: bin.to_path_buf(),
            nodes,
            s3_port: ports[0].1,
            web_port: ports[0].2,
        };
        for number in 0..3 {
            garage.start_node(number);
        }
        // Each node's id (made at its first start), then the configs that name the others.
        let mut ids = Vec::new();
        for number in 0..3 {
            let id = garage.wait_for(number, &["node", "id", "-q"]).await;
            ids.push(id.trim().to_owned());
        }
        for (number, (node, node_ports)) in garage.nodes.iter().zip(&ports).enumerate() {
            let peers: Vec<String> = ids
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != number)
                .map(|(_, id)| id.clone())
                .collect();
            let node_dir = node.config.parent().expect("the node's directory");
            std::fs::write(
                &node.config,
                config_text(node_dir, &secret, *node_ports, &peers),
            )
            .expect("write the node's config");
        }
        for id in &ids[1..] {
            garage.wait_for(0, &["node", "connect", id]).await;
        }
        for id in &ids {
            let short = id.split('@').next().expect("an id");
            garage
                .wait_for(0, &["layout", "assign", "-z", "dc1", "-c", "1G", short])
                .await;
        }
        garage
            .wait_for(0, &["layout", "apply", "--version", "1"])
            .await;
        let key_id = format!("GK{}", random_hex(12));
        let key_secret = random_hex(32);
        garage
            .wait_for(
                0,
                &[
                    "key",
                    "import",
                    "-n",
                    "cairn",
                    "--yes",
                    &key_id,
                    &key_secret,
                ],
            )
            .await;
        garage.wait_for(0, &["bucket", "create", BUCKET]).await;
        garage
            .wait_for(
                0,
                &[
                    "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "cairn",
                ],
            )
            .await;
        garage
            .wait_for(0, &["bucket", "website", "--allow", BUCKET])
            .await;
        garage
            .wait_for(0, &["bucket", "alias", BUCKET, WEB_ALIAS])
            .await;
        garage.wait_for_website().await;
        (garage, key_id, key_secret)
    }

    /// Node 1's S3 API.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The bucket's website on node 1: the log's objects at their tlog-tiles paths.
    pub fn web_url(&self) -> String {
        format!("http://{WEB_ALIAS}:{}", self.web_port)
    }

    /// Starts node `number` (from 0) with its config.
    pub fn start_node(&mut self, number: usize) {
        let node = &mut self.nodes[number];
        assert!(node.child.is_none(), "node {} runs already", number + 1);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("the node's log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the node's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.bin.display()));
        node.child = Some(child);
    }

    /// Kills node `number` (from 0) with SIGKILL.
    pub fn kill_node(&mut self, number: usize) {
        if let Some(mut child) = self.nodes[number].child.take() {
            child.kill().expect("kill the Garage node");
            child.wait().expect("wait for the Garage node");
        }
    }

    /// Waits until node `number` is back in the cluster: node 1 sees three nodes up.
    pub async fn wait_for_node(&self, number: usize) {
        let port = format!("127.0.0.1:{}", self.nodes[number].rpc_port);
        let started = Instant::now();
        loop {
            let status = self.command(0, &["status"]);
            if let Ok(text) = &status {
                // `garage status` lists the nodes it reaches, then any it does not under
                // "FAILED NODES".
                let listed = text.contains(&port);
                if listed && !text.to_lowercase().contains("failed nodes") {
                    return;
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "Garage node {} did not rejoin: {status:?}",
                number + 1
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Runs `garage <args>` against node `number`'s config: its output, or why it failed.
    fn command(&self, number: usize, args: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[number].config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("running garage: {error}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Runs `garage <args>` until it succeeds (a node answers once its RPC port is up, a
    /// layout change once the nodes are connected), at most [`PATIENCE`].
    async fn wait_for(&self, number: usize, args: &[&str]) -> String {
        let started = Instant::now();
        loop {
            match self.command(number, args) {
                Ok(output) => return output,
                Err(error) => assert!(
                    started.elapsed() < PATIENCE,
                    "garage {args:?} fails: {error}\nnode log: {}",
                    std::fs::read_to_string(&self.nodes[number].log).unwrap_or_default()
                ),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the website serves the bucket: a missing object answers 404 (before the
    /// bucket and its alias reach the node, the answer is another error).
    async fn wait_for_website(&self) {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let status = http
                .get(format!("{}/no-such-object", self.web_url()))
                .send()
                .await
                .map(|response| response.status().as_u16());
            if matches!(status, Ok(404)) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "Garage's website does not serve the bucket: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
