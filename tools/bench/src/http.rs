//! A minimal HTTP/1.1 client: one keep-alive connection, one request at a time. The load
//! generator opens one per simulated client, so the server sees exactly C connections.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .context("connecting to the server timed out")?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Client {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        authorization: Option<&HeaderValue>,
        json_body: Option<String>,
    ) -> Result<(StatusCode, Bytes)> {
        self.send_with(method, path, authorization, None, json_body)
            .await
    }

    /// `send` with one more header.
    pub async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        authorization: Option<&HeaderValue>,
        extra_header: Option<(&'static str, HeaderValue)>,
        json_body: Option<String>,
    ) -> Result<(StatusCode, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some((name, value)) = extra_header {
            builder = builder.header(name, value);
        }
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let body = match json_body {
            Some(json) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.sender.send_request(builder.body(body)?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// A request that must answer `expected`; returns the body parsed as JSON.
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        authorization: Option<&HeaderValue>,
        body: Option<serde_json::Value>,
        expected: StatusCode,
    ) -> Result<serde_json::Value> {
        let (status, bytes) = tokio::time::timeout(
            Duration::from_secs(60),
            self.send(
                method.clone(),
                path,
                authorization,
                body.map(|b| b.to_string()),
            ),
        )
        .await
        .with_context(|| format!("{method} {path} timed out"))??;
        if status != expected {
            bail!(
                "{method} {path} answered {status}, expected {expected}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        serde_json::from_slice(&bytes).with_context(|| format!("{method} {path}: body is not JSON"))
    }
}

pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("tokens are ASCII")
}
