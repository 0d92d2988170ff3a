//! Building the application from its settings, binding the listener and serving until a
//! shutdown signal, then draining in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::net::TcpListener;
use tower::util::MapRequestLayer;
use tower::{Layer, ServiceExt};

use super::MIGRATOR;
use crate::config::{DatabaseConfig, ServeConfig};
use crate::state::AppState;

/// Creates the database if needed, connects and applies the migrations.
pub async fn connect_and_migrate(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let url = &config.database_url;
    if !sqlx::Postgres::database_exists(url)
        .await
        .context("DATABASE_URL: cannot reach PostgreSQL")?
    {
        sqlx::Postgres::create_database(url)
            .await
            .context("DATABASE_URL: cannot create the database")?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .context("DATABASE_URL: cannot connect")?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    Ok(pool)
}

/// A bound, ready-to-serve application. Binding to port 0 picks a free port (tests).
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn bind(address: SocketAddr, state: AppState) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    ///
    /// hyper is driven directly (not through `axum::serve`) to bound the time a client may
    /// take to send a request head: without it a client trickling its headers would hold
    /// its connection, and a graceful shutdown, indefinitely.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::server::graceful::GracefulShutdown;
        use hyper_util::service::TowerToHyperService;

        let app =
            MapRequestLayer::new(crate::http::normalize_path).layer(super::router(self.state));
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let graceful = GracefulShutdown::new();
        let serve_connection = |stream: tokio::net::TcpStream| {
            let service = TowerToHyperService::new(app.clone().map_request(
                |request: axum::http::Request<hyper::body::Incoming>| {
                    request.map(axum::body::Body::new)
                },
            ));
            let connection = graceful.watch(
                builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned(),
            );
            tokio::spawn(async move {
                let _ = connection.await;
            });
        };

        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => serve_connection(stream),
                    Err(error) => {
                        // e.g. out of file descriptors: wait instead of spinning
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        // Connections already queued were opened before the signal: serve them too.
        let listener = self.listener.into_std()?;
        listener.set_nonblocking(true)?;
        while let Ok((stream, _)) = listener.accept() {
            if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                serve_connection(stream);
            }
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

/// Longest a client may take to send a request head; below the default drain time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// `refunds-server serve`.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let signalled = shutdown_signal().context("installing signal handlers")?;
    let pool = connect_and_migrate(&config.database).await?;
    let demo = match config.demo {
        true => crate::dev::demo::prepare(&pool)
            .await
            .context("preparing the demo data")?,
        false => None,
    };
    if config.demo && demo.is_none() {
        tracing::warn!("the database holds data other than the demo: no demo data created");
    }
    let mut state = AppState::new(pool).with_admin_token(config.admin_token.as_deref());
    state.request_timeout = Duration::from_secs(config.request_timeout);
    state.idempotency_key_lifetime = Duration::from_secs(config.idempotency_key_ttl);
    tokio::spawn(crate::idempotency::purge_expired_keys(
        state.pool.clone(),
        state.idempotency_key_lifetime.min(Duration::from_secs(600)),
    ));
    let application = Application::bind(config.bind, state).await?;
    if let Some(demo) = demo {
        println!(
            "{}",
            crate::dev::demo::banner(&demo, application.local_addr())
        );
    }
    tracing::info!(address = %application.local_addr(), "listening");
    let drain = Duration::from_secs(config.shutdown_timeout);
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.serve(async move {
        signalled.await;
        tracing::info!("shutting down, draining in-flight requests");
        let _ = signalled_tx.send(());
    }));
    tokio::select! {
        served = server => served.context("server task")?.context("serving")?,
        _ = async {
            let _ = signalled_rx.await;
            tokio::time::sleep(drain).await;
        } => anyhow::bail!("in-flight requests did not finish within {}s", drain.as_secs()),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Registers for SIGTERM and SIGINT at once (so a signal sent as soon as the server says it
/// listens is not lost) and completes when either arrives.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    })
}
