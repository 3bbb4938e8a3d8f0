//! A throwaway S3-compatible server for a test: moto's server (from PyPI, in the tests'
//! venv) on a free loopback port, a bucket made at start, stopped on drop. moto enforces
//! `If-None-Match: *` on PutObject (checked by `s3::the_store_refuses_a_second_commit_of_a_version`),
//! which is what keeps two Delta writers from overwriting each other's commit.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pg::free_port;

/// moto with its server extra; 5.0.14 added conditional PutObject.
pub const MOTO: &str = "moto[server]>=5.0.14";

pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub python: std::path::PathBuf,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// Starts the server and waits until it answers; panics with its output when it does not.
    pub fn start() -> S3Server {
        let python = super::python_venv(&[MOTO, "boto3"]);
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start moto's S3 server (python -m moto.server)");
        let mut server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            python,
            child,
            log,
        };
        let t = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "the S3 server (moto) exited with {status} before answering: {}",
                    std::fs::read_to_string(server.log.path()).unwrap_or_default()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the S3 server (moto) did not answer on port {port} within 60 s: {}",
                std::fs::read_to_string(server.log.path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The server's request log (one line per request, e.g. `"PUT /b/k HTTP/1.1" 200`).
    pub fn log_path(&self) -> std::path::PathBuf {
        self.log.path().to_path_buf()
    }

    /// Requests the server has answered so far.
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(self.log.path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("HTTP/1.1\""))
            .count()
    }

    /// Credentials and endpoint as `[warehouse.storage]` options (moto takes any key).
    pub fn options(&self) -> BTreeMap<String, String> {
        [
            ("endpoint", self.endpoint.as_str()),
            ("allow_http", "true"),
            ("region", "us-east-1"),
            ("access_key_id", "shoplake-test"),
            ("secret_access_key", "shoplake-test-secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Makes bucket `name` (boto3, signed) and returns the lake URI `s3://<name>/lake`.
    pub fn bucket(&self, name: &str) -> String {
        let script = format!(
            "import boto3\nboto3.client('s3', endpoint_url='{}', aws_access_key_id='shoplake-test', aws_secret_access_key='shoplake-test-secret', region_name='us-east-1').create_bucket(Bucket='{name}')",
            self.endpoint
        );
        let out = Command::new(&self.python)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "create bucket {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("s3://{name}/lake")
    }

    /// The `[warehouse]` section of a shoplake.toml for the lake at `uri`.
    pub fn toml(&self, uri: &str) -> String {
        let mut s = format!("[warehouse]\nuri = \"{uri}\"\n[warehouse.storage]\n");
        for (k, v) in self.options() {
            s.push_str(&format!("{k} = \"{v}\"\n"));
        }
        s
    }

    /// Points `config` at the lake `uri` on this server.
    pub fn configure(&self, config: &mut shoplake::config::Config, uri: &str) {
        config.warehouse.uri = Some(uri.to_string());
        config.warehouse.storage = self
            .options()
            .into_iter()
            .map(|(k, v)| (k, toml::Value::String(v)))
            .collect();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
