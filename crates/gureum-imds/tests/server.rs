//! The server on a real socket: loopback listeners, callers told apart by their loopback source
//! address (127.0.0.1 is an instance, 127.0.0.2 is nobody, …), raw HTTP/1.1, `curl` and
//! botocore when the machine has them, and an ignored latency benchmark.
//!
//! Run the benchmark with
//! `cargo test -p gureum-imds --release --test server -- --ignored --nocapture read_latency`.

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gureum_imds::{
    Architecture, HttpEndpoint, HttpTokens, ImdsServer, InstanceMetadata, MetadataSource,
    TtlObserver,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const INSTANCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const NOBODY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

struct FakeSource(HashMap<Ipv4Addr, Arc<InstanceMetadata>>);

#[async_trait::async_trait]
impl MetadataSource for FakeSource {
    async fn instance_by_ip(&self, ip: Ipv4Addr) -> Option<Arc<InstanceMetadata>> {
        self.0.get(&ip).cloned()
    }
}

fn instance(id: &str, ip: Ipv4Addr) -> InstanceMetadata {
    InstanceMetadata {
        instance_id: id.into(),
        ami_id: "ami-0abcdef1234567890".into(),
        ami_launch_index: 0,
        instance_type: "t2.micro".into(),
        local_hostname: "ip-172-31-16-5.ec2.internal".into(),
        local_ipv4: ip,
        mac: "02:42:ac:1f:10:05".into(),
        interface_id: "eni-0123456789abcdef0".into(),
        public_ipv4: Some(Ipv4Addr::new(127, 100, 0, 7)),
        public_hostname: Some("ec2-127-100-0-7.compute-1.amazonaws.com".into()),
        availability_zone: "us-east-1a".into(),
        availability_zone_id: "use1-az1".into(),
        region: "us-east-1".into(),
        reservation_id: "r-0123456789abcdef0".into(),
        security_groups: vec!["default".into()],
        security_group_ids: vec!["sg-0000000000000000a".into()],
        public_keys: vec![(
            "demo".into(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx demo".into(),
        )],
        user_data: None,
        block_device_mapping: vec![
            ("ami".into(), "/dev/xvda".into()),
            ("root".into(), "/dev/xvda".into()),
        ],
        vpc_id: "vpc-0123456789abcdef0".into(),
        subnet_id: "subnet-0123456789abcdef0".into(),
        subnet_ipv4_cidr_block: "172.31.16.0/20".into(),
        vpc_ipv4_cidr_block: "172.31.0.0/16".into(),
        account_id: "123456789012".into(),
        architecture: Architecture::X86_64,
        launch_time: "2024-05-06T07:08:09Z".into(),
        http_tokens: HttpTokens::Optional,
        http_endpoint: HttpEndpoint::Enabled,
        hop_limit: 1,
        tags: None,
    }
}

/// A clock the test moves by hand.
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_secs(1_700_000_000)
            + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

async fn start(
    instances: Vec<InstanceMetadata>,
    clock: TestClock,
    observer: Option<TtlObserver>,
) -> Running {
    let map = instances
        .into_iter()
        .map(|md| (md.local_ipv4, Arc::new(md)))
        .collect();
    let mut server = ImdsServer::new(Arc::new(FakeSource(map)), move || clock.now());
    if let Some(observer) = observer {
        server = server.with_ttl_observer(observer);
    }
    let listener = TcpListener::bind((INSTANCE, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// The one-instance server most tests use: 127.0.0.1 is `i-0123456789abcdef0`.
async fn start_one(md: InstanceMetadata) -> (Running, TestClock) {
    let clock = TestClock::default();
    (start(vec![md], clock.clone(), None).await, clock)
}

#[derive(Debug)]
struct Resp {
    status: u16,
    /// Header names as sent on the wire (case preserved).
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// A minimal keep-alive HTTP/1.1 client over one TCP connection.
struct Client(BufReader<TcpStream>);

impl Client {
    async fn connect(server: SocketAddr, from: Ipv4Addr) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind((from, 0).into()).unwrap();
        let stream = socket.connect(server).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self(BufReader::new(stream))
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 169.254.169.254\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "PUT" {
            req.push_str("Content-Length: 0\r\n");
        }
        req.push_str("\r\n");
        self.0.get_mut().write_all(req.as_bytes()).await.unwrap();
        self.read_response(method == "HEAD").await
    }

    async fn read_response(&mut self, head_only: bool) -> Resp {
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.0.read_line(&mut line).await.unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.to_owned(), v.trim().to_owned()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if !head_only {
            let len: usize = resp.header("content-length").unwrap().parse().unwrap();
            resp.body.resize(len, 0);
            self.0.read_exact(&mut resp.body).await.unwrap();
        }
        resp
    }
}

async fn get(server: SocketAddr, from: Ipv4Addr, path: &str, headers: &[(&str, &str)]) -> Resp {
    Client::connect(server, from)
        .await
        .send("GET", path, headers)
        .await
}

async fn put_token(server: SocketAddr, from: Ipv4Addr, ttl: &str) -> Resp {
    Client::connect(server, from)
        .await
        .send(
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
        )
        .await
}

const FORBIDDEN_TITLE: &str = "<h1>403 - Forbidden</h1>";

#[tokio::test]
async fn imdsv1_reads_over_keep_alive() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let mut c = Client::connect(srv.addr, INSTANCE).await;
    let r = c.send("GET", "/latest/meta-data/instance-id", &[]).await;
    assert_eq!((r.status, r.text()), (200, "i-0123456789abcdef0"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("server"), Some("EC2ws"));
    // Same connection, more requests.
    let r = c
        .send("GET", "/latest/meta-data/placement/region", &[])
        .await;
    assert_eq!((r.status, r.text()), (200, "us-east-1"));
    let r = c.send("GET", "/latest/meta-data/nope", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.text().contains("<title>404 - Not Found</title>"));
    let r = c.send("GET", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("1.0\n2007-01-19\n") && r.text().ends_with("\nlatest"));
    let r = c.send("HEAD", "/latest/meta-data/instance-id", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("19"));
    // The connection is still in step after a HEAD.
    let r = c.send("GET", "/latest/meta-data/ami-id", &[]).await;
    assert_eq!((r.status, r.text()), (200, "ami-0abcdef1234567890"));
    srv.stop().await;
}

#[tokio::test]
async fn imdsv2_token_flow_raw() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let mut c = Client::connect(srv.addr, INSTANCE).await;
    let r = c
        .send(
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // EC2's spelling, exactly: some clients match header names case-sensitively.
    assert!(
        r.headers
            .iter()
            .any(|(n, v)| n == "X-Aws-Ec2-Metadata-Token-Ttl-Seconds" && v == "60"),
        "{:?}",
        r.headers
    );
    let token = r.text().to_owned();
    assert_eq!(token.len(), 52);
    let r = c
        .send(
            "GET",
            "/latest/meta-data/instance-id",
            &[("X-aws-ec2-metadata-token", &token)],
        )
        .await;
    assert_eq!((r.status, r.text()), (200, "i-0123456789abcdef0"));
    assert_eq!(r.header("x-aws-ec2-metadata-token-ttl-seconds"), Some("60"));
    // The token also works on another connection.
    let r = get(
        srv.addr,
        INSTANCE,
        "/latest/meta-data/local-ipv4",
        &[("X-aws-ec2-metadata-token", &token)],
    )
    .await;
    assert_eq!((r.status, r.text()), (200, "127.0.0.1"));
    srv.stop().await;
}

#[tokio::test]
async fn token_ttl_must_be_one_to_six_hours() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    for bad in ["0", "21601", "x"] {
        let r = put_token(srv.addr, INSTANCE, bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.text().contains("<h1>400 - Bad Request</h1>"));
    }
    let r = Client::connect(srv.addr, INSTANCE)
        .await
        .send("PUT", "/latest/api/token", &[])
        .await;
    assert_eq!(r.status, 400);
    for good in ["1", "21600"] {
        assert_eq!(
            put_token(srv.addr, INSTANCE, good).await.status,
            200,
            "{good}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn forwarded_token_request_is_forbidden() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let r = Client::connect(srv.addr, INSTANCE)
        .await
        .send(
            "PUT",
            "/latest/api/token",
            &[
                ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
                ("X-Forwarded-For", "198.51.100.1"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains(FORBIDDEN_TITLE));
    srv.stop().await;
}

#[tokio::test]
async fn required_tokens_and_expiry() {
    let md = InstanceMetadata {
        http_tokens: HttpTokens::Required,
        ..instance("i-0123456789abcdef0", INSTANCE)
    };
    let (srv, clock) = start_one(md).await;
    let r = get(srv.addr, INSTANCE, "/latest/meta-data/instance-id", &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("<h1>401 - Unauthorized</h1>"));

    let token = put_token(srv.addr, INSTANCE, "2").await.text().to_owned();
    let with = [("X-aws-ec2-metadata-token", token.as_str())];
    let r = get(srv.addr, INSTANCE, "/latest/meta-data/instance-id", &with).await;
    assert_eq!(r.status, 200);
    clock.advance(Duration::from_millis(1_999));
    let r = get(srv.addr, INSTANCE, "/latest/meta-data/instance-id", &with).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-aws-ec2-metadata-token-ttl-seconds"), Some("1"));
    clock.advance(Duration::from_millis(1));
    let r = get(srv.addr, INSTANCE, "/latest/meta-data/instance-id", &with).await;
    assert_eq!(r.status, 401, "expired");

    // A tampered token is as good as none.
    let mut forged = token.into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let r = get(
        srv.addr,
        INSTANCE,
        "/latest/meta-data/instance-id",
        &[("X-aws-ec2-metadata-token", &forged)],
    )
    .await;
    assert_eq!(r.status, 401);
    srv.stop().await;
}

#[tokio::test]
async fn expired_token_is_refused_even_when_optional() {
    let (srv, clock) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let token = put_token(srv.addr, INSTANCE, "60").await.text().to_owned();
    clock.advance(Duration::from_secs(61));
    let r = get(
        srv.addr,
        INSTANCE,
        "/latest/meta-data/instance-id",
        &[("X-aws-ec2-metadata-token", &token)],
    )
    .await;
    assert_eq!(r.status, 401);
    // Without the stale token, IMDSv1 still answers.
    let r = get(srv.addr, INSTANCE, "/latest/meta-data/instance-id", &[]).await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn token_of_one_instance_does_not_work_for_another() {
    let other_ip = Ipv4Addr::new(127, 0, 0, 3);
    let clock = TestClock::default();
    let srv = start(
        vec![
            instance("i-0123456789abcdef0", INSTANCE),
            instance("i-0fedcba9876543210", other_ip),
        ],
        clock,
        None,
    )
    .await;
    let token = put_token(srv.addr, INSTANCE, "60").await.text().to_owned();
    let with = [("X-aws-ec2-metadata-token", token.as_str())];
    let r = get(srv.addr, other_ip, "/latest/meta-data/instance-id", &with).await;
    assert_eq!(r.status, 401);
    let r = get(srv.addr, other_ip, "/latest/meta-data/instance-id", &[]).await;
    assert_eq!((r.status, r.text()), (200, "i-0fedcba9876543210"));
    srv.stop().await;
}

#[tokio::test]
async fn unknown_caller_and_disabled_endpoint_look_the_same() {
    let disabled_ip = Ipv4Addr::new(127, 0, 0, 4);
    let clock = TestClock::default();
    let srv = start(
        vec![
            instance("i-0123456789abcdef0", INSTANCE),
            InstanceMetadata {
                http_endpoint: HttpEndpoint::Disabled,
                ..instance("i-0fedcba9876543210", disabled_ip)
            },
        ],
        clock,
        None,
    )
    .await;
    let mut answers = Vec::new();
    for from in [NOBODY, disabled_ip] {
        for (method, path) in [
            ("GET", "/latest/meta-data/instance-id"),
            ("GET", "/"),
            ("GET", "/latest/nope"),
            ("PUT", "/latest/api/token"),
        ] {
            let r = Client::connect(srv.addr, from)
                .await
                .send(
                    method,
                    path,
                    &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
                )
                .await;
            assert_eq!(r.status, 403, "{from} {method} {path}");
            assert!(r.text().contains(FORBIDDEN_TITLE));
            answers.push((r.header("content-type").map(str::to_owned), r.body));
        }
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "identical answers"
    );
    srv.stop().await;
}

#[tokio::test]
async fn user_data_round_trips_byte_for_byte() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(16 * 1024).collect();
    let md = InstanceMetadata {
        user_data: Some(bytes.clone()),
        ..instance("i-0123456789abcdef0", INSTANCE)
    };
    let (srv, _) = start_one(md).await;
    let r = get(srv.addr, INSTANCE, "/latest/user-data", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body == bytes);
    let r = get(srv.addr, INSTANCE, "/latest/", &[]).await;
    assert_eq!(r.text(), "dynamic\nmeta-data\nuser-data");
    srv.stop().await;

    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let r = get(srv.addr, INSTANCE, "/latest/user-data", &[]).await;
    assert_eq!(r.status, 404);
    let r = get(srv.addr, INSTANCE, "/latest/", &[]).await;
    assert_eq!(r.text(), "dynamic\nmeta-data");
    srv.stop().await;
}

#[tokio::test]
async fn identity_document_fields() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let r = get(
        srv.addr,
        INSTANCE,
        "/latest/dynamic/instance-identity/document",
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    for (field, want) in [
        ("accountId", "123456789012"),
        ("architecture", "x86_64"),
        ("availabilityZone", "us-east-1a"),
        ("imageId", "ami-0abcdef1234567890"),
        ("instanceId", "i-0123456789abcdef0"),
        ("instanceType", "t2.micro"),
        ("pendingTime", "2024-05-06T07:08:09Z"),
        ("privateIp", "127.0.0.1"),
        ("region", "us-east-1"),
        ("version", "2017-09-30"),
    ] {
        assert_eq!(doc[field], want, "{field}");
    }
    for null in [
        "billingProducts",
        "devpayProductCodes",
        "marketplaceProductCodes",
        "kernelId",
        "ramdiskId",
    ] {
        assert!(doc[null].is_null(), "{null}");
    }
    let r = get(
        srv.addr,
        INSTANCE,
        "/latest/dynamic/instance-identity/signature",
        &[],
    )
    .await;
    assert_eq!(r.status, 404);
    srv.stop().await;
}

#[tokio::test]
async fn token_reply_carries_the_hop_limit_as_ip_ttl() {
    let seen: Arc<Mutex<Vec<(SocketAddr, u32)>>> = Arc::default();
    let observer: TtlObserver = {
        let seen = seen.clone();
        Arc::new(move |peer, ttl| seen.lock().unwrap().push((peer, ttl)))
    };
    let md = InstanceMetadata {
        hop_limit: 3,
        ..instance("i-0123456789abcdef0", INSTANCE)
    };
    let srv = start(vec![md], TestClock::default(), Some(observer)).await;

    // Reads alone leave the system default.
    let mut reader = Client::connect(srv.addr, INSTANCE).await;
    assert_eq!(
        reader.send("GET", "/latest/meta-data/", &[]).await.status,
        200
    );
    assert!(seen.lock().unwrap().is_empty());

    let mut c = Client::connect(srv.addr, INSTANCE).await;
    let local = c.0.get_ref().local_addr().unwrap();
    let r = c
        .send(
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(*seen.lock().unwrap(), vec![(local, 3)]);
    // Later answers on that connection keep it; refusals set nothing.
    let r = c.send("GET", "/latest/meta-data/", &[]).await;
    assert_eq!(r.status, 200);
    let r = Client::connect(srv.addr, INSTANCE)
        .await
        .send("PUT", "/latest/api/token", &[])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(seen.lock().unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let mut idle = Client::connect(srv.addr, INSTANCE).await;
    assert_eq!(idle.send("GET", "/latest/", &[]).await.status, 200);
    let started = Instant::now();
    srv.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), idle.0.read_to_end(&mut rest))
        .await
        .expect("server closed the connection")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn one_address_cannot_hold_unbounded_connections() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let mut held = Vec::new();
    for _ in 0..128 {
        let mut c = Client::connect(srv.addr, INSTANCE).await;
        assert_eq!(c.send("GET", "/latest/", &[]).await.status, 200);
        held.push(c);
    }
    // The 129th is answered: the instance's longest-idle connection is closed for it…
    let mut extra = Client::connect(srv.addr, INSTANCE).await;
    assert_eq!(extra.send("GET", "/latest/", &[]).await.status, 200);
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), held[0].0.read_to_end(&mut buf))
        .await
        .expect("the oldest idle connection was closed");
    assert!(
        read.is_err() || buf.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    // …so the instance never holds more than 128, and another address is unaffected.
    let r = get(srv.addr, NOBODY, "/latest/", &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(held[127].send("GET", "/latest/", &[]).await.status, 200);
}

/// `program args…` → (exit success, stdout), or `None` when the program is missing.
async fn run(program: &str, args: &[&str]) -> Option<(bool, String, String)> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn curl_imdsv2() {
    let md = InstanceMetadata {
        http_tokens: HttpTokens::Required,
        ..instance("i-0123456789abcdef0", INSTANCE)
    };
    let (srv, _) = start_one(md).await;
    let base = format!("http://{}", srv.addr);
    let Some((ok, token, stderr)) = run(
        "curl",
        &[
            "-s",
            "-f",
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            &format!("{base}/latest/api/token"),
        ],
    )
    .await
    else {
        println!("skipped: no curl on this machine");
        return;
    };
    assert!(ok, "{stderr}");
    assert_eq!(token.len(), 52);
    let header = format!("X-aws-ec2-metadata-token: {token}");
    let (ok, out, stderr) = run(
        "curl",
        &[
            "-s",
            "-f",
            "-H",
            &header,
            &format!("{base}/latest/meta-data/instance-id"),
        ],
    )
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    assert_eq!(out, "i-0123456789abcdef0");
    // Without a token: 401.
    let (_, code, _) = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/latest/meta-data/instance-id"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(code, "401");
    srv.stop().await;
}

const BOTOCORE_SCRIPT: &str = r#"
import sys
try:
    import botocore.utils as u
except ImportError as e:
    print("SKIP botocore not importable: %s" % e)
    sys.exit(0)

base = sys.argv[1]
f = u.IMDSFetcher(base_url=base, timeout=2, num_attempts=1)
token = f._fetch_metadata_token()
assert token and len(token) == 52, token
r = f._get_request("latest/meta-data/instance-id", None, token)
assert r.status_code == 200, r.status_code
print("instance-id", r.text)

# The credential provider's fetcher: no IAM role here, so nothing, gracefully.
creds = u.InstanceMetadataFetcher(base_url=base, timeout=2, num_attempts=1).retrieve_iam_role_credentials()
assert creds == {}, creds
print("iam", creds)

# The region provider's fetcher reads placement/availability-zone with a token.
region = u.InstanceMetadataRegionFetcher(timeout=2, num_attempts=1, config={"ec2_metadata_service_endpoint": base}).retrieve_region()
print("region", region)
assert region == "us-east-1", region
"#;

#[tokio::test]
async fn botocore_imds_fetcher() {
    let md = InstanceMetadata {
        http_tokens: HttpTokens::Required,
        ..instance("i-0123456789abcdef0", INSTANCE)
    };
    let (srv, _) = start_one(md).await;
    let base = format!("http://{}/", srv.addr);
    let Some((ok, out, stderr)) = run("python3", &["-c", BOTOCORE_SCRIPT, &base]).await else {
        println!("skipped: no python3 on this machine");
        return;
    };
    assert!(ok, "stdout:\n{out}\nstderr:\n{stderr}");
    if let Some(reason) = out.strip_prefix("SKIP ") {
        println!("skipped: {reason}");
        return;
    }
    println!("{out}");
    assert!(out.contains("instance-id i-0123456789abcdef0"), "{out}");
    assert!(out.contains("region us-east-1"), "{out}");
    srv.stop().await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn measure<F, Fut>(n: usize, mut one: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        one().await;
        times.push(t.elapsed());
    }
    times.sort();
    times
}

/// Client-observed latency of one read over a keep-alive loopback connection (request written,
/// whole response read), IMDSv1 and IMDSv2, plus a new connection per request (curl's pattern).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn read_latency() {
    let (srv, _) = start_one(instance("i-0123456789abcdef0", INSTANCE)).await;
    let token = put_token(srv.addr, INSTANCE, "21600")
        .await
        .text()
        .to_owned();
    const N: usize = 20_000;
    let mut rows = Vec::new();

    let mut c = Client::connect(srv.addr, INSTANCE).await;
    for _ in 0..1_000 {
        c.send("GET", "/latest/meta-data/instance-id", &[]).await;
    }
    let c = Arc::new(tokio::sync::Mutex::new(c));
    let v1 = measure(N, || {
        let c = c.clone();
        async move {
            let r = c
                .lock()
                .await
                .send("GET", "/latest/meta-data/instance-id", &[])
                .await;
            assert_eq!(r.status, 200);
        }
    })
    .await;
    rows.push(("GET instance-id, IMDSv1, keep-alive", v1));

    let v2 = measure(N, || {
        let c = c.clone();
        let token = token.clone();
        async move {
            let r = c
                .lock()
                .await
                .send(
                    "GET",
                    "/latest/meta-data/instance-id",
                    &[("X-aws-ec2-metadata-token", &token)],
                )
                .await;
            assert_eq!(r.status, 200);
        }
    })
    .await;
    rows.push(("GET instance-id, IMDSv2 token, keep-alive", v2));

    let listing = measure(N, || {
        let c = c.clone();
        async move {
            let r = c.lock().await.send("GET", "/latest/meta-data/", &[]).await;
            assert_eq!(r.status, 200);
        }
    })
    .await;
    rows.push(("GET meta-data/ listing, keep-alive", listing));

    let put = measure(N / 4, || {
        let c = c.clone();
        async move {
            let r = c
                .lock()
                .await
                .send(
                    "PUT",
                    "/latest/api/token",
                    &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
                )
                .await;
            assert_eq!(r.status, 200);
        }
    })
    .await;
    rows.push(("PUT api/token, keep-alive", put));

    let fresh = measure(N / 4, || async {
        let r = get(srv.addr, INSTANCE, "/latest/meta-data/instance-id", &[]).await;
        assert_eq!(r.status, 200);
    })
    .await;
    rows.push(("GET instance-id, new connection each", fresh));

    println!();
    println!("| request (loopback, 1 client) | n | p50 µs | p90 µs | p99 µs | max µs |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, times) in &rows {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            times.len(),
            percentile(times, 0.50).as_secs_f64() * 1e6,
            percentile(times, 0.90).as_secs_f64() * 1e6,
            percentile(times, 0.99).as_secs_f64() * 1e6,
            times.last().unwrap().as_secs_f64() * 1e6,
        );
    }
    for (name, times) in &rows {
        assert!(
            percentile(times, 0.50) < Duration::from_millis(1),
            "{name}: p50 {:?}",
            percentile(times, 0.50)
        );
    }
    srv.stop().await;
}

/// A source with a bug: it panics for one caller.
struct PanickySource(FakeSource);

#[async_trait::async_trait]
impl MetadataSource for PanickySource {
    async fn instance_by_ip(&self, ip: Ipv4Addr) -> Option<Arc<InstanceMetadata>> {
        assert_ne!(ip, NOBODY, "a bug in the metadata source");
        self.0.instance_by_ip(ip).await
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let md = instance("i-0123456789abcdef0", INSTANCE);
    let source = PanickySource(FakeSource([(INSTANCE, Arc::new(md))].into()));
    let server = ImdsServer::new(Arc::new(source), std::time::SystemTime::now);
    let listener = TcpListener::bind((INSTANCE, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    let mut c = Client::connect(addr, NOBODY).await;
    let r = c.send("GET", "/latest/meta-data/instance-id", &[]).await;
    assert_eq!(r.status, 500);
    // The same connection, and the server, still answer.
    let r = c.send("GET", "/latest/meta-data/instance-id", &[]).await;
    assert_eq!(r.status, 500);
    let r = get(addr, INSTANCE, "/latest/meta-data/instance-id", &[]).await;
    assert_eq!((r.status, r.text()), (200, "i-0123456789abcdef0"));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
