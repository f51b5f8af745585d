//! The API client behind the friendly subcommands: where the endpoint and credentials come
//! from (the data dir's `config` and `credentials` files, flags, `AWS_*` variables), signed
//! EC2 Query requests over HTTP/1.1, and the small XML tree the answers are read from.
//!
//! It is a real client of a running `gureum up`, exactly as the AWS CLI would be: it never
//! opens the store, so it works against a remote endpoint and sees only what the API shows.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::setup::PROFILE;

/// The EC2 API version every request names (the one the server implements).
const API_VERSION: &str = "2016-11-15";
/// A request that takes longer has met a hung server, not a slow action: every EC2 action
/// answers at once and the slow work (booting, stopping) happens after the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An error the API answered with (`Response/Errors/Error`); shown as `Code: Message`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Where to connect and as whom.
#[derive(Debug, Clone)]
pub struct Connection {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Overrides of what the data dir says.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub endpoint: Option<String>,
    pub profile: Option<String>,
}

impl Connection {
    /// Resolve the connection the way the AWS tools do, with the data dir's files (written by
    /// `gureum up`) in place of `~/.aws`: flags first, then `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`, then the profile in `<data-dir>/credentials` and `config`.
    pub fn resolve(data_dir: &Path, o: &Overrides) -> anyhow::Result<Connection> {
        let profile = o.profile.as_deref().unwrap_or(PROFILE);
        let config_path = data_dir.join("config");
        let config = read_ini(&config_path)?;
        // The config file names profiles `[profile NAME]`, except `default`.
        let section = config
            .get(&format!("profile {profile}"))
            .or_else(|| config.get(profile));

        let endpoint = match (&o.endpoint, section.and_then(|s| s.get("endpoint_url"))) {
            (Some(e), _) => e.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => bail!(
                "no endpoint: {} has no endpoint_url for profile {profile:?} \
                 (is `gureum up` using this --data-dir? else pass --endpoint URL)",
                config_path.display()
            ),
        };
        let region = section
            .and_then(|s| s.get("region").cloned())
            .or_else(|| env_nonempty("AWS_REGION"))
            .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned());

        let (access_key_id, secret_access_key) = match (
            env_nonempty("AWS_ACCESS_KEY_ID"),
            env_nonempty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(ak), Some(sk)) => (ak, sk),
            _ => {
                let path = data_dir.join("credentials");
                let creds = read_ini(&path)?;
                let keys = creds.get(profile);
                match (
                    keys.and_then(|k| k.get("aws_access_key_id")),
                    keys.and_then(|k| k.get("aws_secret_access_key")),
                ) {
                    (Some(ak), Some(sk)) => (ak.clone(), sk.clone()),
                    _ => bail!(
                        "no credentials: {} has no keys for profile {profile:?} \
                         (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --profile)",
                        path.display()
                    ),
                }
            }
        };
        Ok(Connection {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
        })
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

type Ini = HashMap<String, HashMap<String, String>>;

/// Read an AWS-style INI file; a missing file is an empty one (the caller says what it
/// lacked), an unreadable one (say, root's 0600 files) is an error.
fn read_ini(path: &Path) -> anyhow::Result<Ini> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(parse_ini(&s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn parse_ini(text: &str) -> Ini {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            // `[profile  x]` and `[profile x]` are the same section to the AWS CLI.
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            ini.entry(name.clone()).or_default();
            section = Some(name);
        } else if let (Some(s), Some((k, v))) = (&section, line.split_once('=')) {
            ini.entry(s.clone())
                .or_default()
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    ini
}

/// A signed EC2 Query client. Its methods block: the friendly commands are sequential, so
/// the client owns a current-thread runtime instead of making every caller async.
pub struct Client {
    rt: tokio::runtime::Runtime,
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    conn: Connection,
}

impl Client {
    pub fn new(conn: Connection) -> anyhow::Result<Client> {
        let base: Uri = conn
            .endpoint
            .parse()
            .with_context(|| format!("{:?} is not a URL", conn.endpoint))?;
        match base.scheme_str() {
            Some("http") => {}
            Some(other) => bail!(
                "endpoint {}: only http:// is supported by this client, not {other}://",
                conn.endpoint
            ),
            None => bail!("endpoint {}: expected http://HOST:PORT", conn.endpoint),
        }
        let authority = base
            .authority()
            .with_context(|| format!("endpoint {} has no host", conn.endpoint))?;
        // Requests always go to `/`: EC2's Query API has one path.
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query("/")
            .build()
            .context("building the endpoint URL")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build::<_, Full<Bytes>>(connector);
        Ok(Client {
            rt,
            http,
            uri,
            conn,
        })
    }

    /// Call `action` with `params` (already in Query form: `InstanceId.1`, `Filter.1.Name`…)
    /// and return the answer's root element. API errors come back as [`ApiError`].
    pub fn call(&self, action: &str, params: &[(String, String)]) -> anyhow::Result<Node> {
        let mut body = format!("Action={}&Version={API_VERSION}", form_encode(action));
        for (k, v) in params {
            body.push('&');
            body.push_str(&form_encode(k));
            body.push('=');
            body.push_str(&form_encode(v));
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header(
                http::header::USER_AGENT,
                concat!("gureum-cli/", env!("CARGO_PKG_VERSION")),
            )
            .body(body.into_bytes())
            .context("building the request")?;
        let params = gureum_sigv4::SigningParams::new(
            &self.conn.access_key_id,
            &self.conn.secret_access_key,
            &self.conn.region,
            "ec2",
            time::OffsetDateTime::now_utc(),
        );
        gureum_sigv4::sign_request(&mut req, &params)
            .map_err(|e| anyhow::anyhow!("signing the request: {e}"))?;
        let req = req.map(|b| Full::new(Bytes::from(b)));

        let (status, body) = self
            .rt
            .block_on(async {
                let send = async {
                    let resp = self.http.request(req).await?;
                    let status = resp.status();
                    let body = resp.into_body().collect().await?.to_bytes();
                    anyhow::Ok((status, body))
                };
                // hyper-util's `tokio` feature enables tokio's timers, which this relies on.
                match tokio::time::timeout(REQUEST_TIMEOUT, send).await {
                    Ok(r) => r,
                    Err(_) => bail!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                }
            })
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach gureum at {}: {} (is `gureum up` running?)",
                    self.conn.endpoint,
                    root_cause(&*e)
                )
            })?;

        let text = String::from_utf8_lossy(&body);
        let root = parse_xml(&text);
        if status.is_success() {
            return root.with_context(|| format!("{action}: unreadable answer"));
        }
        match root.ok().as_ref().and_then(api_error) {
            Some(e) => Err(e.into()),
            None => bail!(
                "{action}: HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        }
    }
}

/// The innermost cause: hyper's outer errors ("client error (Connect)") say little.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

/// `Response/Errors/Error/{Code,Message}` (EC2) or `ErrorResponse/Error/…` (STS-style).
fn api_error(root: &Node) -> Option<ApiError> {
    let err = root
        .path(&["Errors", "Error"])
        .or_else(|| root.child("Error"))?;
    Some(ApiError {
        code: err.text_of("Code")?.to_owned(),
        message: err.text_of("Message").unwrap_or_default().to_owned(),
    })
}

/// Percent-encode for a form body: everything but RFC 3986's unreserved characters, which
/// is also what SigV4's canonical form expects.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One XML element: its local name (namespace prefixes dropped), its text and its children.
/// EC2 answers are small, so a tree is simpler than streaming and lets callers walk paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The descendant at `path`, taking the first child of each name.
    pub fn path(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, name| n.child(name))
    }

    /// The element's text, trimmed.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// The text of the child `name`, if it is present and not empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(Node::text).filter(|t| !t.is_empty())
    }

    /// The text at `path`, if present and not empty.
    pub fn text_at(&self, path: &[&str]) -> Option<&str> {
        self.path(path).map(Node::text).filter(|t| !t.is_empty())
    }

    /// The `item`s of the list child `set` (EC2 wraps every list as `<xSet><item>…`).
    pub fn items<'a>(&'a self, set: &str) -> impl Iterator<Item = &'a Node> + 'a {
        self.child(set)
            .into_iter()
            .flat_map(|s| s.children.iter().filter(|c| c.name == "item"))
    }
}

/// Parse a whole document into its root element.
pub fn parse_xml(text: &str) -> anyhow::Result<Node> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let name_of = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
    loop {
        match reader.read_event().context("malformed XML")? {
            Event::Start(e) => stack.push(Node {
                name: name_of(e.local_name().as_ref()),
                ..Node::default()
            }),
            Event::Empty(e) => {
                let node = Node {
                    name: name_of(e.local_name().as_ref()),
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = root.or(Some(node)),
                }
            }
            Event::End(_) => {
                let node = stack.pop().context("malformed XML: unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = root.or(Some(node)),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(&t.unescape().context("malformed XML text")?);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(&c.decode().context("malformed XML CDATA")?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        bail!("malformed XML: unclosed <{}>", stack[stack.len() - 1].name);
    }
    root.context("empty XML document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_sets_and_text() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <reservationSet><item><instancesSet>
    <item><instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name></instanceState>
      <tagSet><item><key>Name</key><value>a&amp;b</value></item></tagSet><groupSet/></item>
    <item><instanceId>i-2</instanceId></item>
  </instancesSet></item></reservationSet>
  <nextToken>tok</nextToken>
</DescribeInstancesResponse>"#;
        let root = parse_xml(xml).unwrap();
        assert_eq!(root.name, "DescribeInstancesResponse");
        assert_eq!(root.text_of("nextToken"), Some("tok"));
        let insts: Vec<&Node> = root
            .items("reservationSet")
            .flat_map(|r| r.items("instancesSet"))
            .collect();
        assert_eq!(insts.len(), 2);
        assert_eq!(
            insts[0].text_at(&["instanceState", "name"]),
            Some("running")
        );
        let tag = insts[0].items("tagSet").next().unwrap();
        assert_eq!(tag.text_of("value"), Some("a&b"));
        assert!(insts[0].child("groupSet").unwrap().children.is_empty());
        assert_eq!(insts[1].text_of("instanceState"), None);
    }

    #[test]
    fn reads_the_error_envelope() {
        let xml = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>\
                   <Message>The instance ID 'i-1' does not exist</Message></Error></Errors>\
                   <RequestID>x</RequestID></Response>";
        let e = api_error(&parse_xml(xml).unwrap()).unwrap();
        assert_eq!(
            e.to_string(),
            "InvalidInstanceID.NotFound: The instance ID 'i-1' does not exist"
        );
    }

    #[test]
    fn rejects_broken_documents() {
        assert!(parse_xml("").is_err());
        assert!(parse_xml("<a><b></a>").is_err());
        assert!(parse_xml("<a>").is_err());
    }

    #[test]
    fn form_encoding_keeps_only_unreserved() {
        assert_eq!(form_encode("Filter.1.Name"), "Filter.1.Name");
        assert_eq!(form_encode("tag:Name"), "tag%3AName");
        assert_eq!(form_encode("a b+/=é"), "a%20b%2B%2F%3D%C3%A9");
    }

    #[test]
    fn ini_sections_and_profiles() {
        let ini = parse_ini(
            "# comment\n[profile  gureum]\nregion = eu-west-1\nendpoint_url = http://h:1\n\
             [gureum]\naws_access_key_id=AK\naws_secret_access_key = S=K\n",
        );
        assert_eq!(ini["profile gureum"]["endpoint_url"], "http://h:1");
        assert_eq!(ini["profile gureum"]["region"], "eu-west-1");
        assert_eq!(ini["gureum"]["aws_secret_access_key"], "S=K");
    }

    #[test]
    fn resolves_from_the_data_dir() {
        let dir = std::env::temp_dir().join(format!("gureum-client-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config"),
            "[profile gureum]\nregion = us-east-2\nendpoint_url = http://127.0.0.1:9\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("credentials"),
            "[gureum]\naws_access_key_id = AK\naws_secret_access_key = SK\n",
        )
        .unwrap();
        let c = Connection::resolve(&dir, &Overrides::default());
        let o = Overrides {
            endpoint: Some("http://elsewhere:1".into()),
            profile: Some("nobody".into()),
        };
        let missing = Connection::resolve(&dir, &o);
        std::fs::remove_dir_all(&dir).unwrap();
        // The environment may carry real AWS keys; only check what it cannot change.
        let c = c.unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert_eq!(c.region, "us-east-2");
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            assert_eq!(
                (c.access_key_id.as_str(), c.secret_access_key.as_str()),
                ("AK", "SK")
            );
            assert!(missing.unwrap_err().to_string().contains("no credentials"));
        }
    }
}
