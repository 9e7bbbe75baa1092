//! A service's readiness, asked from the host: one HTTP/1.1 GET with basic auth over a plain
//! TCP connection (a JSON health endpoint needs no HTTP client library).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of an answer read: a health document is small.
const MAX_ANSWER: u64 = 64 << 10;

/// An HTTP answer: status code and body (chunked transfer decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// `GET path` on `addr`, with basic auth when `login` is given (user, password); `None` when
/// nothing answered within `limit` (not listening yet, a reset, a garbled answer).
pub async fn get(
    addr: SocketAddr,
    path: &str,
    login: Option<(&str, &str)>,
    limit: Duration,
) -> Option<Answer> {
    tokio::time::timeout(limit, exchange(addr, path, login))
        .await
        .ok()
        .flatten()
}

async fn exchange(addr: SocketAddr, path: &str, login: Option<(&str, &str)>) -> Option<Answer> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((user, password)) = login {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut raw).await.ok()?;
    parse(&raw)
}

/// Parse an HTTP/1.x answer read to its end.
fn parse(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = lines.any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"healthy\":true}";
        assert_eq!(
            parse(plain),
            Some(Answer {
                status: 200,
                body: "{\"healthy\":true}".to_owned()
            })
        );
        let chunked = b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(
            parse(chunked),
            Some(Answer {
                status: 401,
                body: "hello world".to_owned()
            })
        );
        assert_eq!(parse(b"garbage"), None);
    }
}
