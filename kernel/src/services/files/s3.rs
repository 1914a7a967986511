//! File content in an S3-compatible object store (`files.backend = "s3"`):
//! AWS S3, MinIO, Ceph RGW, or a cloud provider's S3 API.
//!
//! Objects are named `PREFIX + sha256`, so a put is idempotent (the same
//! content always lands under the same key, and a HEAD first skips the
//! upload when it is already there) and S3 checks each upload against the
//! signed `x-amz-content-sha256`. Requests are signed with AWS Signature
//! Version 4 here (`sigv4`), not by an SDK: three requests (HEAD, PUT, GET)
//! do not justify aws-sdk's build. The HTTP client is `ureq` (blocking,
//! run on tokio's blocking pool) with rustls for `https` endpoints.

use std::sync::Arc;
use std::time::Duration;

use crate::core::config::S3Config;

/// Environment variables that supply the credentials, overriding the file:
/// secrets stay out of configuration files that are copied around.
pub const ENV_ACCESS_KEY_ID: &str = "TIANSHAN_S3_ACCESS_KEY_ID";
pub const ENV_SECRET_ACCESS_KEY: &str = "TIANSHAN_S3_SECRET_ACCESS_KEY";

/// AWS Signature Version 4, as S3 checks it.
pub mod sigv4 {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    /// The SHA-256 of an empty body, which GET and HEAD requests sign.
    pub const EMPTY_SHA256: &str =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[derive(Clone)]
    pub struct Credentials {
        pub access_key_id: String,
        pub secret_access_key: String,
    }

    impl std::fmt::Debug for Credentials {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Credentials")
                .field("access_key_id", &self.access_key_id)
                .field("secret_access_key", &"<redacted>")
                .finish()
        }
    }

    /// What is signed of one request.
    pub struct Request<'a> {
        pub method: &'a str,
        /// The absolute path, already URI-encoded (S3 does not encode twice).
        pub path: &'a str,
        /// Query parameters, not encoded.
        pub query: &'a [(&'a str, &'a str)],
        /// Every header to sign, `host`, `x-amz-date` and
        /// `x-amz-content-sha256` among them; names in any case.
        pub headers: &'a [(&'a str, &'a str)],
        /// Hex SHA-256 of the body.
        pub payload_sha256: &'a str,
    }

    /// Percent-encodes all but RFC 3986 unreserved characters (and `/`
    /// when `keep_slash`), upper-case hex, as SigV4 requires.
    pub fn uri_encode(s: &str, keep_slash: bool) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b'/' if keep_slash => out.push('/'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    fn signed_header_names(req: &Request<'_>) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(n, v)| {
                // Trim, and fold inner runs of spaces to one.
                let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
                (n.to_ascii_lowercase(), value)
            })
            .collect();
        headers.sort();
        headers
    }

    pub fn signed_headers(req: &Request<'_>) -> String {
        signed_header_names(req)
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";")
    }

    pub fn canonical_request(req: &Request<'_>) -> String {
        let mut query: Vec<(String, String)> = req
            .query
            .iter()
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        query.sort();
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let headers: String = signed_header_names(req)
            .iter()
            .map(|(n, v)| format!("{n}:{v}\n"))
            .collect();
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method,
            req.path,
            query,
            headers,
            signed_headers(req),
            req.payload_sha256
        )
    }

    /// `amz_date` is `YYYYMMDDTHHMMSSZ`; the scope is its date.
    pub fn string_to_sign(region: &str, amz_date: &str, canonical_request: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{}/{region}/s3/aws4_request\n{}",
            &amz_date[..8],
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        )
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn signature(secret: &str, region: &str, amz_date: &str, string_to_sign: &str) -> String {
        let key = hmac(format!("AWS4{secret}").as_bytes(), &amz_date[..8]);
        let key = hmac(&key, region);
        let key = hmac(&key, "s3");
        let key = hmac(&key, "aws4_request");
        hex::encode(hmac(&key, string_to_sign))
    }

    /// The `Authorization` header value for `req`.
    pub fn authorization(
        creds: &Credentials,
        region: &str,
        amz_date: &str,
        req: &Request<'_>,
    ) -> String {
        let to_sign = string_to_sign(region, amz_date, &canonical_request(req));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{region}/s3/aws4_request,SignedHeaders={},Signature={}",
            creds.access_key_id,
            &amz_date[..8],
            signed_headers(req),
            signature(&creds.secret_access_key, region, amz_date, &to_sign)
        )
    }

    /// `YYYYMMDDTHHMMSSZ` for a Unix time in seconds.
    pub fn amz_date(unix_secs: i64) -> String {
        let (year, month, day) =
            crate::core::calendar::civil_from_days(unix_secs.div_euclid(86_400));
        let secs = unix_secs.rem_euclid(86_400);
        format!(
            "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// Where requests go: `scheme://authority/base-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    scheme: &'static str,
    authority: String,
    base_path: String,
}

fn parse_endpoint(url: &str) -> Result<Endpoint, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else {
        return Err(format!(
            "endpoint {url:?}: must start with https:// or http://"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let valid_authority = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid_authority || path.contains(['?', '#']) {
        return Err(format!(
            "endpoint {url:?}: expected scheme://host[:port][/path], no credentials or query"
        ));
    }
    Ok(Endpoint {
        scheme,
        authority: authority.to_ascii_lowercase(),
        base_path: path.trim_end_matches('/').to_string(),
    })
}

/// S3's bucket naming rules (the DNS-compatible ones).
fn valid_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= 256
        && !prefix.starts_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
}

/// An S3 bucket holding file content by SHA-256.
pub struct S3Store {
    agent: ureq::Agent,
    endpoint: Endpoint,
    bucket: String,
    region: String,
    prefix: String,
    path_style: bool,
    creds: sigv4::Credentials,
    /// Largest object read back (the file size limit): a damaged or foreign
    /// object cannot make the kernel buffer without bound.
    max_bytes: usize,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Settings with their sources resolved; what start-up validates.
impl S3Store {
    /// Builds the store from `[files.s3]`, credentials from the environment
    /// (`env`) taking precedence. Refuses incomplete or malformed settings
    /// at start rather than on the first upload.
    pub fn new(
        config: &S3Config,
        max_bytes: usize,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<S3Store> {
        let required = |value: Option<String>, what: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| anyhow::anyhow!("files.backend = \"s3\" needs files.s3.{what}"))
        };
        let endpoint = parse_endpoint(&required(config.endpoint.clone(), "endpoint")?)
            .map_err(|e| anyhow::anyhow!("files.s3.{e}"))?;
        let bucket = required(config.bucket.clone(), "bucket")?;
        if !valid_bucket(&bucket) {
            anyhow::bail!(
                "files.s3.bucket {bucket:?}: 3-63 lower-case letters, digits, dots and hyphens"
            );
        }
        if !valid_prefix(&config.prefix) {
            anyhow::bail!(
                "files.s3.prefix {:?}: at most 256 of A-Z a-z 0-9 / - _ ., not starting with /",
                config.prefix
            );
        }
        if config.region.is_empty()
            || !config
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            anyhow::bail!("files.s3.region {:?}: e.g. us-east-1", config.region);
        }
        let access_key_id = required(
            env(ENV_ACCESS_KEY_ID).or(config.access_key_id.clone()),
            &format!("access-key-id (or {ENV_ACCESS_KEY_ID})"),
        )?;
        let secret_access_key = required(
            env(ENV_SECRET_ACCESS_KEY).or(config.secret_access_key.clone()),
            &format!("secret-access-key (or {ENV_SECRET_ACCESS_KEY})"),
        )?;
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("files.s3.ca-file {}: {e}", path.display()))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("files.s3.ca-file {}: {e}", path.display()))?;
            if certs.is_empty() {
                anyhow::bail!("files.s3.ca-file {}: no certificates", path.display());
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(config.timeout_secs.max(1))))
                .tls_config(tls.build())
                .build(),
        );
        Ok(S3Store {
            agent,
            endpoint,
            bucket,
            region: config.region.clone(),
            prefix: config.prefix.clone(),
            path_style: config.path_style,
            creds: sigv4::Credentials {
                access_key_id,
                secret_access_key,
            },
            max_bytes,
        })
    }

    /// The object key of content with this hash.
    pub fn key(&self, sha256: &str) -> String {
        format!("{}{sha256}", self.prefix)
    }

    /// Host header and (encoded) path of `key`, or of the bucket itself.
    fn target(&self, key: Option<&str>) -> (String, String) {
        let key = key.map(|k| sigv4::uri_encode(k, true)).unwrap_or_default();
        if self.path_style {
            (
                self.endpoint.authority.clone(),
                format!("{}/{}/{key}", self.endpoint.base_path, self.bucket),
            )
        } else {
            (
                format!("{}.{}", self.bucket, self.endpoint.authority),
                format!("{}/{key}", self.endpoint.base_path),
            )
        }
    }

    /// Sends one signed request; blocking (run it off the async threads).
    fn send(
        &self,
        method: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        use sha2::Digest;
        let (host, path) = self.target(key);
        let amz_date = sigv4::amz_date(crate::db::now());
        let payload_sha256 = match body {
            Some(b) => hex::encode(sha2::Sha256::digest(b)),
            None => sigv4::EMPTY_SHA256.to_string(),
        };
        let headers = [
            ("host", host.as_str()),
            ("x-amz-content-sha256", payload_sha256.as_str()),
            ("x-amz-date", amz_date.as_str()),
        ];
        let authorization = sigv4::authorization(
            &self.creds,
            &self.region,
            &amz_date,
            &sigv4::Request {
                method,
                path: &path,
                query: &[],
                headers: &headers,
                payload_sha256: &payload_sha256,
            },
        );
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}://{host}{path}", self.endpoint.scheme))
            .header("host", &host)
            .header("x-amz-content-sha256", &payload_sha256)
            .header("x-amz-date", &amz_date)
            .header("authorization", authorization);
        match body {
            Some(b) => self.agent.run(
                request
                    .header("content-type", "application/octet-stream")
                    .body(b)?,
            ),
            None => self.agent.run(request.body(())?),
        }
    }

    /// Creates the bucket (for tests and first setup); an existing bucket
    /// owned by the same account is fine.
    pub fn create_bucket(&self) -> std::io::Result<()> {
        let mut response = self.send("PUT", None, Some(b"")).map_err(io_error)?;
        match response.status().as_u16() {
            200 | 409 => Ok(()),
            status => Err(self.failure("PUT bucket", None, status, &mut response)),
        }
    }

    pub fn put_blocking(&self, sha256: &str, content: &[u8]) -> std::io::Result<()> {
        let key = self.key(sha256);
        let mut head = self.send("HEAD", Some(&key), None).map_err(io_error)?;
        match head.status().as_u16() {
            // Already stored: content-addressed, so it is the same content.
            200 => return Ok(()),
            404 => {}
            status => return Err(self.failure("HEAD", Some(&key), status, &mut head)),
        }
        let mut put = self
            .send("PUT", Some(&key), Some(content))
            .map_err(io_error)?;
        match put.status().as_u16() {
            200 | 201 | 204 => Ok(()),
            status => Err(self.failure("PUT", Some(&key), status, &mut put)),
        }
    }

    pub fn get_blocking(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let key = self.key(sha256);
        let mut response = self.send("GET", Some(&key), None).map_err(io_error)?;
        match response.status().as_u16() {
            200 => response
                .body_mut()
                .with_config()
                .limit(self.max_bytes as u64 + 1)
                .read_to_vec()
                .map_err(io_error),
            404 => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            status => Err(self.failure("GET", Some(&key), status, &mut response)),
        }
    }

    /// Logs an unexpected answer with S3's error code, and turns it into an
    /// I/O error (the caller maps it to "storage unavailable").
    fn failure(
        &self,
        op: &str,
        key: Option<&str>,
        status: u16,
        response: &mut ureq::http::Response<ureq::Body>,
    ) -> std::io::Error {
        let body = response
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        let code = body
            .split("<Code>")
            .nth(1)
            .and_then(|rest| rest.split("</Code>").next())
            .unwrap_or("");
        tracing::error!(op, bucket = %self.bucket, key = key.unwrap_or(""), status, code,
            "S3 request failed");
        std::io::Error::other(format!("S3 {op}: HTTP {status} {code}"))
    }
}

fn io_error(e: ureq::Error) -> std::io::Error {
    match e {
        ureq::Error::Io(e) => e,
        other => std::io::Error::other(other),
    }
}

/// Runs a blocking S3 call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    store: Arc<S3Store>,
    f: impl FnOnce(&S3Store) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(std::io::Error::other)?
}

/// The `BlobStore` face of an `S3Store` (shared with the blocking pool).
pub struct S3Blobs(pub Arc<S3Store>);

impl crate::services::files::BlobStore for S3Blobs {
    fn put(
        &self,
        sha256: &str,
        content: &[u8],
    ) -> futures_util::future::BoxFuture<'_, std::io::Result<()>> {
        let sha256 = sha256.to_string();
        let content = content.to_vec();
        let store = self.0.clone();
        Box::pin(blocking(store, move |s| s.put_blocking(&sha256, &content)))
    }

    fn get(&self, sha256: &str) -> futures_util::future::BoxFuture<'_, std::io::Result<Vec<u8>>> {
        let sha256 = sha256.to_string();
        let store = self.0.clone();
        Box::pin(blocking(store, move |s| s.get_blocking(&sha256)))
    }
}

#[cfg(test)]
mod tests {
    use super::sigv4::*;
    use super::*;

    fn example_credentials() -> Credentials {
        // AWS's documentation example keys (not real credentials).
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    /// The GET Object example of "Authenticating Requests: Using the
    /// Authorization Header (AWS Signature Version 4)" in the S3 API
    /// reference, step by step.
    #[test]
    fn signs_the_documented_get_object_example() {
        let headers = [
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let request = Request {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let canonical = canonical_request(&request);
        assert_eq!(
            canonical,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let to_sign = string_to_sign("us-east-1", "20130524T000000Z", &canonical);
        assert_eq!(
            to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        assert_eq!(
            authorization(
                &example_credentials(),
                "us-east-1",
                "20130524T000000Z",
                &request
            ),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // A changed byte anywhere changes the signature.
        let tampered = Request {
            path: "/test.txu",
            ..request
        };
        assert!(
            !authorization(
                &example_credentials(),
                "us-east-1",
                "20130524T000000Z",
                &tampered
            )
            .ends_with("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        );
    }

    /// The GET Bucket (List Objects) example of the same page: query
    /// parameters are encoded and sorted.
    #[test]
    fn signs_the_documented_list_objects_example() {
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let request = Request {
            method: "GET",
            path: "/",
            query: &[("prefix", "J"), ("max-keys", "2")],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        assert!(canonical_request(&request).starts_with("GET\n/\nmax-keys=2&prefix=J\n"));
        assert!(
            authorization(
                &example_credentials(),
                "us-east-1",
                "20130524T000000Z",
                &request
            )
            .ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            )
        );
    }

    #[test]
    fn encodes_and_dates_as_sigv4_wants() {
        assert_eq!(uri_encode("a b/c~d*é", true), "a%20b/c~d%2A%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(951_825_599), "20000229T115959Z");
    }

    fn config() -> S3Config {
        S3Config {
            endpoint: Some("http://127.0.0.1:9000".into()),
            bucket: Some("tianshan-files".into()),
            access_key_id: Some("from-file".into()),
            secret_access_key: Some("file-secret".into()),
            ..S3Config::default()
        }
    }

    #[test]
    fn settings_are_checked_at_start_and_env_credentials_win() {
        let no_env = |_: &str| None;
        let store = S3Store::new(&config(), 1024, no_env).unwrap();
        assert_eq!(store.creds.access_key_id, "from-file");
        assert_eq!(
            store.target(Some("ab/cd")),
            ("127.0.0.1:9000".into(), "/tianshan-files/ab/cd".into())
        );
        let env = |name: &str| match name {
            ENV_ACCESS_KEY_ID => Some("from-env".to_string()),
            ENV_SECRET_ACCESS_KEY => Some("env-secret".to_string()),
            _ => None,
        };
        let store = S3Store::new(
            &S3Config {
                access_key_id: None,
                secret_access_key: None,
                path_style: false,
                prefix: "tianshan/".into(),
                endpoint: Some("https://s3.example.gov.cn/base/".into()),
                ..config()
            },
            1024,
            env,
        )
        .unwrap();
        assert_eq!(store.creds.access_key_id, "from-env");
        assert_eq!(store.creds.secret_access_key, "env-secret");
        assert_eq!(store.key("00ff"), "tianshan/00ff");
        assert_eq!(
            store.target(Some("tianshan/00ff")),
            (
                "tianshan-files.s3.example.gov.cn".into(),
                "/base/tianshan/00ff".into()
            )
        );
        assert!(!format!("{:?}", store.creds).contains("env-secret"));

        let refused = |c: S3Config| S3Store::new(&c, 1024, no_env).unwrap_err().to_string();
        assert!(refused(S3Config::default()).contains("files.s3.endpoint"));
        assert!(
            refused(S3Config {
                secret_access_key: None,
                ..config()
            })
            .contains(ENV_SECRET_ACCESS_KEY)
        );
        assert!(
            refused(S3Config {
                endpoint: Some("ftp://x".into()),
                ..config()
            })
            .contains("https://")
        );
        assert!(
            refused(S3Config {
                endpoint: Some("http://user:pw@x".into()),
                ..config()
            })
            .contains("no credentials")
        );
        assert!(
            refused(S3Config {
                bucket: Some("Bad_Bucket".into()),
                ..config()
            })
            .contains("bucket")
        );
        assert!(
            refused(S3Config {
                prefix: "../x?".into(),
                ..config()
            })
            .contains("prefix")
        );
    }
}
