//! Building the application from its settings, binding the listener and serving until a
//! shutdown signal, then draining in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::net::TcpListener;
use tower::util::MapRequestLayer;
use tower::{Layer, ServiceExt};

use super::MIGRATOR;
use crate::auth::cache::TokenCache;
use crate::config::{DatabaseConfig, ProcessorConfig, ProcessorKind, Secret, ServeConfig};
use crate::payments::stripe::StripeProcessor;
use crate::payments::{PaymentProcessor, SandboxProcessor};
use crate::refunds::recovery::{self, RecoverySettings};
use crate::state::{AppState, ReadReplica};

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
    let options: PgConnectOptions = url.parse().context("DATABASE_URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        // No ping before each use: it cost a round trip per request. A connection a
        // database restart broke fails its first statement (answered 503) and is dropped.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(named(options, SESSION_NAME))
        .await
        .context("DATABASE_URL: cannot connect")?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    Ok(pool)
}

const SESSION_NAME: &str = "refunds-server";
/// The session that listens for changes to tokens and memberships.
const TOKEN_CACHE_SESSION_NAME: &str = "refunds-server-token-cache";

/// The server's sessions carry its name (in `pg_stat_activity`), unless the URL names them.
fn named(options: PgConnectOptions, name: &str) -> PgConnectOptions {
    match options.get_application_name() {
        Some(_) => options,
        None => options.application_name(name),
    }
}

/// The pool of the read replica, if one is configured. It connects lazily: a replica that
/// is down at start-up is bypassed, not fatal.
fn read_replica(config: &ServeConfig) -> anyhow::Result<Option<Arc<ReadReplica>>> {
    let Some(url) = &config.database_read_url else {
        return Ok(None);
    };
    let options: PgConnectOptions = url.parse().context("REFUNDS_DATABASE_READ_URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(config.database.db_max_connections)
        // A replica that stops answering is left for the primary rather than waited for.
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(named(options, SESSION_NAME));
    Ok(Some(ReadReplica::new(
        pool,
        Duration::from_millis(config.read_max_lag_ms),
    )))
}

/// The processor the settings name, and the signing secret of Stripe's webhooks (the
/// endpoint is on when it is set). A Stripe setting that is missing stops start-up with one
/// line naming it.
pub fn processor(
    config: &ProcessorConfig,
) -> anyhow::Result<(Arc<dyn PaymentProcessor>, Option<Secret>)> {
    match config.processor {
        // Stripe's events (refunds made in its dashboard, disputes) may be received without
        // refunding through Stripe.
        ProcessorKind::Sandbox => Ok((
            Arc::new(SandboxProcessor),
            config.stripe_webhook_secret.clone(),
        )),
        ProcessorKind::Stripe => {
            let missing =
                |name: &str| anyhow::anyhow!("{name} must be set when REFUNDS_PROCESSOR=stripe");
            let key = config
                .stripe_secret_key
                .clone()
                .ok_or_else(|| missing("STRIPE_SECRET_KEY"))?;
            let webhook_secret = config
                .stripe_webhook_secret
                .clone()
                .ok_or_else(|| missing("STRIPE_WEBHOOK_SECRET"))?;
            let base = config.stripe_api_base.trim();
            if !(base.starts_with("https://") || base.starts_with("http://")) {
                anyhow::bail!(
                    "STRIPE_API_BASE must be an http(s) URL, such as https://api.stripe.com"
                );
            }
            let stripe =
                StripeProcessor::new(base, key, Duration::from_millis(config.stripe_timeout_ms))
                    .context("STRIPE_API_BASE: cannot build the Stripe client")?;
            Ok((Arc::new(stripe), Some(webhook_secret)))
        }
    }
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

        let lame_duck = self.state.lame_duck.clone();
        let app =
            MapRequestLayer::new(crate::http::normalize_path).layer(super::router(self.state));
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let graceful = GracefulShutdown::new();
        let serve_connection = |stream: tokio::net::TcpStream| {
            let lame_duck = lame_duck.clone();
            let service = TowerToHyperService::new(
                app.clone()
                    .map_request(|request: axum::http::Request<hyper::body::Incoming>| {
                        request.map(axum::body::Body::new)
                    })
                    .map_response(move |mut response: axum::response::Response| {
                        // Once stopping, a client's next request should open a connection
                        // that the load balancer sends to another instance.
                        if lame_duck.load(Ordering::Relaxed) {
                            response.headers_mut().insert(
                                axum::http::header::CONNECTION,
                                axum::http::HeaderValue::from_static("close"),
                            );
                        }
                        response
                    }),
            );
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
    let (processor, stripe_webhook_secret) = processor(&config.processor)?;
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
    let webhooks = crate::webhooks::DeliverySettings {
        timeout: Duration::from_millis(config.webhooks.webhook_timeout_ms),
        retry_base: Duration::from_millis(config.webhooks.webhook_retry_base_ms),
        allow_private_urls: config.webhooks.webhook_allow_private_urls || config.demo,
    };
    state.webhook_allow_private_urls = webhooks.allow_private_urls;
    let (stop_delivery, delivery_stopped) = tokio::sync::watch::channel(false);
    let delivery = tokio::spawn(crate::webhooks::run_delivery(
        state.pool.clone(),
        webhooks,
        delivery_stopped,
    ));
    state.request_timeout = Duration::from_secs(config.request_timeout);
    state.idempotency_key_lifetime = Duration::from_secs(config.idempotency_key_ttl);
    state.processor = processor;
    state.stripe_webhook_secret = stripe_webhook_secret;
    state.recovery_after = Duration::from_millis(config.processor.recovery_after_ms);
    tokio::spawn(recovery::run(
        state.clone(),
        RecoverySettings {
            interval: Duration::from_millis(config.processor.recovery_interval_ms),
            sandbox_settle_after: config
                .processor
                .sandbox_settle_after_ms
                .map(Duration::from_millis),
        },
    ));
    tokio::spawn(crate::idempotency::purge_expired_keys(
        state.pool.clone(),
        state.idempotency_key_lifetime.min(Duration::from_secs(600)),
    ));
    // The listener needs no stopping: it has nothing in flight, and its session ends with
    // the process.
    if config.token_cache_ttl_ms > 0 {
        let cache = Arc::new(TokenCache::new(
            Duration::from_millis(config.token_cache_ttl_ms),
            crate::auth::cache::DEFAULT_CAPACITY,
        ));
        let options: PgConnectOptions = config
            .database
            .database_url
            .parse()
            .context("DATABASE_URL")?;
        tokio::spawn(crate::auth::cache::listen(
            cache.clone(),
            named(options, TOKEN_CACHE_SESSION_NAME),
        ));
        state.token_cache = cache;
    }
    state.replica = read_replica(&config)?;
    if let Some(replica) = &state.replica {
        tokio::spawn(replica.clone().monitor(state.pool.clone()));
    }
    let lame_duck = state.lame_duck.clone();
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
    let delay = Duration::from_millis(config.shutdown_delay_ms);
    let server = tokio::spawn(application.serve(async move {
        let signal = signalled.await;
        lame_duck.store(true, Ordering::Relaxed);
        // SIGTERM comes from an orchestrator that also tells the load balancer: keep
        // serving until the balancer has seen /readyz fail. Ctrl-C stops at once.
        if signal == Signal::Terminate && !delay.is_zero() {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "SIGTERM: /readyz answers 503; still serving until the shutdown delay is over"
            );
            tokio::time::sleep(delay).await;
        }
        tracing::info!("shutting down, draining in-flight requests");
        let _ = signalled_tx.send(());
    }));
    let deadline = async {
        let _ = signalled_rx.await;
        tokio::time::sleep(drain).await;
    };
    let mut deadline = std::pin::pin!(deadline);
    tokio::select! {
        served = server => served.context("server task")?.context("serving")?,
        _ = &mut deadline => anyhow::bail!("in-flight requests did not finish within {}s", drain.as_secs()),
    }
    // Deliveries in flight finish and are recorded; what is left waits in the outbox for
    // any instance.
    let _ = stop_delivery.send(true);
    tokio::select! {
        _ = delivery => {}
        _ = &mut deadline => anyhow::bail!("webhook deliveries did not finish within {}s", drain.as_secs()),
    }
    tracing::info!("stopped");
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Signal {
    Terminate,
    Interrupt,
}

/// Registers for SIGTERM and SIGINT at once (so a signal sent as soon as the server says it
/// listens is not lost) and completes with the first that arrives.
fn shutdown_signal() -> std::io::Result<impl Future<Output = Signal>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => Signal::Terminate,
            _ = interrupt.recv() => Signal::Interrupt,
        }
    })
}
