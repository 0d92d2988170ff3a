//! The principals of recently used tokens, kept in memory so that an authenticated request
//! need not look its token up in PostgreSQL, and the listener that keeps them honest.
//!
//! Several processes share one database, and a token revoked (or a membership removed)
//! through any of them must stop working on all of them at once. The database notifies
//! the channel `refunds_token_cache` at the commit of every such change (see the migration
//! `token_cache`); each process listens on it and empties its cache on every notification.
//! A notification sent while a listener is not connected is lost, so the cache is trusted
//! only while its listener is known to be connected: from the moment the connection is in
//! doubt every lookup goes to the database, and the cache is emptied before it is used
//! again. A lookup that finds no token is never kept (a new token works at once), and no
//! entry outlives the cache's lifetime or the token's own expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::Principal;

/// The channel the database notifies when what a token resolves to may have changed.
pub const CHANNEL: &str = "refunds_token_cache";
/// Most tokens kept; when full, expired entries are dropped, then all of them.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// How often the listener checks that its connection still answers. A connection can die
/// without a word (a network failure, a firewall dropping an idle connection): notifications
/// would stop arriving while nothing says so.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// How long an answered heartbeat vouches for the connection, counted from when it was
/// sent: a connection that stops answering is distrusted within this time, below the one
/// second within which a change must take effect everywhere.
const TRUST_WINDOW: Duration = Duration::from_millis(750);
/// Longest a heartbeat or a connection attempt may take before the connection is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(2);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(1);

pub struct TokenCache {
    ttl: Duration,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Vec<u8>, Entry>,
    /// Bumped by every flush, so that a lookup that started before a change cannot store
    /// what it read.
    generation: u64,
    /// Until when the listener vouches that it has seen every change; `None` while it is
    /// not connected.
    trusted_until: Option<Instant>,
}

impl State {
    fn trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_some_and(|until| now < until)
    }
}

struct Entry {
    principal: Principal,
    expires: Instant,
}

/// What a lookup that missed may store once it has read the database: only if no change
/// was announced since it looked, and the cache was trusted then.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<u64>);

pub enum Cached {
    Hit(Principal),
    Miss(Ticket),
}

impl TokenCache {
    /// An empty cache, bypassed until a listener vouches for it (see `listen`).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            state: Mutex::default(),
        }
    }

    /// A cache that keeps nothing: every lookup goes to the database.
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO, 0)
    }

    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent after any panic (every change is a single assignment or a
        // clear), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, token_hash: &[u8]) -> Cached {
        if !self.is_enabled() {
            return Cached::Miss(Ticket(None));
        }
        let now = Instant::now();
        let (cached, outcome) = {
            let state = self.lock();
            if !state.trusted(now) {
                (Cached::Miss(Ticket(None)), "bypassed")
            } else {
                match state.entries.get(token_hash) {
                    Some(entry) if now < entry.expires => {
                        (Cached::Hit(entry.principal.clone()), "hit")
                    }
                    _ => (Cached::Miss(Ticket(Some(state.generation))), "miss"),
                }
            }
        };
        metrics::counter!("refunds_token_cache_lookups_total", "outcome" => outcome).increment(1);
        cached
    }

    /// Keeps what a lookup that missed found, for the cache's lifetime at most and never
    /// past the token's expiry.
    pub fn insert(
        &self,
        ticket: Ticket,
        token_hash: &[u8],
        principal: &Principal,
        token_expires_at: Option<DateTime<Utc>>,
    ) {
        let Ticket(Some(generation)) = ticket else {
            return;
        };
        let now = Instant::now();
        let mut expires = now + self.ttl;
        if let Some(expires_at) = token_expires_at {
            // By this process's clock: the database's and ours are assumed close.
            match (expires_at - Utc::now()).to_std() {
                Ok(left) => expires = expires.min(now + left),
                Err(_) => return,
            }
        }
        let mut state = self.lock();
        if state.generation != generation || !state.trusted(now) {
            return;
        }
        if state.entries.len() >= self.capacity && !state.entries.contains_key(token_hash) {
            state.entries.retain(|_, entry| now < entry.expires);
            if state.entries.len() >= self.capacity {
                state.entries.clear();
            }
        }
        state.entries.insert(
            token_hash.to_vec(),
            Entry {
                principal: principal.clone(),
                expires,
            },
        );
        let size = state.entries.len();
        drop(state);
        metrics::gauge!("refunds_token_cache_entries").set(size as f64);
    }

    /// Something a token resolves to may have changed: forget everything, and refuse what
    /// lookups already under way read.
    pub fn flush(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.generation += 1;
        drop(state);
        metrics::gauge!("refunds_token_cache_entries").set(0.0);
    }

    /// The listener has seen every change announced until now, and vouches for the cache
    /// until `until`.
    fn vouch(&self, until: Instant) {
        self.lock().trusted_until = Some(until);
    }

    /// The listener lost its connection: changes may go unseen.
    fn distrust(&self) {
        self.lock().trusted_until = None;
        self.flush();
    }
}

/// Keeps `cache` in step with the database for as long as the process runs: connects,
/// listens, empties the cache on every notification, checks the connection every
/// `HEARTBEAT`, and after any failure reconnects in the background (the cache is bypassed
/// meanwhile, and emptied once connected again).
pub async fn listen(cache: Arc<TokenCache>, options: PgConnectOptions) {
    let mut retry = RETRY_MIN;
    let mut failing = false;
    loop {
        let error = match connect(&options).await {
            Ok((listener, listening_since)) => {
                // Changes committed before LISTEN took effect were not announced to us.
                cache.flush();
                cache.vouch(listening_since + TRUST_WINDOW);
                metrics::gauge!("refunds_token_cache_listening").set(1.0);
                tracing::info!("token cache listener connected: the token cache is in use");
                failing = false;
                retry = RETRY_MIN;
                follow(&cache, listener).await
            }
            Err(error) => error,
        };
        cache.distrust();
        metrics::gauge!("refunds_token_cache_listening").set(0.0);
        if !failing {
            tracing::warn!(
                error = format!("{error:#}"),
                "token cache listener not connected: tokens are looked up in the database until it is"
            );
            failing = true;
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// A listening connection, and when it started listening at the latest.
async fn connect(options: &PgConnectOptions) -> anyhow::Result<(PgListener, Instant)> {
    // A pool of its own per connection: a connection given up on (one that stopped
    // answering) is left behind rather than waited for.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(GIVE_UP_AFTER)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection is ours to notice and replace, not to be reconnected silently.
    listener.eager_reconnect(false);
    let since = Instant::now();
    tokio::time::timeout(GIVE_UP_AFTER, listener.listen(CHANNEL)).await??;
    Ok((listener, since))
}

/// Follows one connection until it fails, and says why.
async fn follow(cache: &TokenCache, mut listener: PgListener) -> anyhow::Error {
    let mut next_heartbeat = tokio::time::Instant::now() + HEARTBEAT;
    loop {
        // Waiting for a notification is cancel-safe: a message half read stays buffered.
        match tokio::time::timeout_at(next_heartbeat, listener.try_recv()).await {
            Ok(Ok(Some(_))) => cache.flush(),
            Ok(Ok(None)) => return anyhow::anyhow!("the connection was lost"),
            Ok(Err(error)) => return error.into(),
            Err(_) => {
                let sent = Instant::now();
                match tokio::time::timeout(
                    GIVE_UP_AFTER,
                    sqlx::query("SELECT 1").execute(&mut listener),
                )
                .await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return error.into(),
                    Err(_) => return anyhow::anyhow!("the connection stopped answering"),
                }
                // Notifications that arrived with the answer were sent before it: they are
                // acted on before the cache is vouched for again.
                if listener.next_buffered().is_some() {
                    while listener.next_buffered().is_some() {}
                    cache.flush();
                }
                cache.vouch(sent + TRUST_WINDOW);
                next_heartbeat = tokio::time::Instant::from_std(sent) + HEARTBEAT;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Subject;
    use uuid::Uuid;

    fn principal() -> Principal {
        Principal {
            subject: Subject::Organization(Uuid::new_v4()),
            scopes: vec!["refunds:read".into()],
            organization_ids: vec![Uuid::new_v4()],
        }
    }

    fn trusted(ttl: Duration, capacity: usize) -> TokenCache {
        let cache = TokenCache::new(ttl, capacity);
        cache.vouch(Instant::now() + Duration::from_secs(60));
        cache
    }

    fn ticket(cache: &TokenCache, hash: &[u8]) -> Ticket {
        match cache.get(hash) {
            Cached::Miss(ticket) => ticket,
            Cached::Hit(_) => panic!("expected a miss"),
        }
    }

    fn is_hit(cache: &TokenCache, hash: &[u8]) -> bool {
        matches!(cache.get(hash), Cached::Hit(_))
    }

    #[test]
    fn keeps_what_a_miss_found_until_a_flush() {
        let cache = trusted(Duration::from_secs(60), 10);
        let found = principal();
        let ticket = ticket(&cache, b"a");
        cache.insert(ticket, b"a", &found, None);
        match cache.get(b"a") {
            Cached::Hit(hit) => assert_eq!(hit.subject, found.subject),
            Cached::Miss(_) => panic!("expected a hit"),
        }
        assert!(!is_hit(&cache, b"b"), "another token is not found");
        cache.flush();
        assert!(!is_hit(&cache, b"a"));
    }

    #[test]
    fn a_lookup_that_started_before_a_flush_stores_nothing() {
        let cache = trusted(Duration::from_secs(60), 10);
        let ticket = ticket(&cache, b"a");
        // A change is announced while the lookup reads the database.
        cache.flush();
        cache.insert(ticket, b"a", &principal(), None);
        assert!(!is_hit(&cache, b"a"));
    }

    #[test]
    fn is_bypassed_until_vouched_for_and_once_distrusted() {
        let cache = TokenCache::new(Duration::from_secs(60), 10);
        let untrusted = ticket(&cache, b"a");
        cache.vouch(Instant::now() + Duration::from_secs(60));
        cache.insert(untrusted, b"a", &principal(), None);
        assert!(!is_hit(&cache, b"a"), "read while untrusted: not kept");

        let ticket = ticket(&cache, b"a");
        cache.insert(ticket, b"a", &principal(), None);
        assert!(is_hit(&cache, b"a"));
        cache.distrust();
        assert!(!is_hit(&cache, b"a"));
        cache.vouch(Instant::now() + Duration::from_secs(60));
        assert!(!is_hit(&cache, b"a"), "emptied when distrusted");
    }

    #[test]
    fn a_vouch_that_lapses_bypasses_the_cache() {
        let cache = trusted(Duration::from_secs(60), 10);
        let ticket = ticket(&cache, b"a");
        cache.insert(ticket, b"a", &principal(), None);
        cache.vouch(Instant::now());
        assert!(!is_hit(&cache, b"a"));
        cache.vouch(Instant::now() + Duration::from_secs(60));
        assert!(is_hit(&cache, b"a"), "the same connection answered again");
    }

    #[test]
    fn entries_expire_with_the_ttl_or_the_token() {
        let cache = trusted(Duration::from_millis(50), 10);
        let ticket_a = ticket(&cache, b"a");
        cache.insert(ticket_a, b"a", &principal(), None);
        let ticket_b = ticket(&cache, b"b");
        cache.insert(
            ticket_b,
            b"b",
            &principal(),
            Some(Utc::now() - chrono::Duration::seconds(1)),
        );
        assert!(is_hit(&cache, b"a"));
        assert!(!is_hit(&cache, b"b"), "an expired token is not kept");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!is_hit(&cache, b"a"));

        let cache = trusted(Duration::from_secs(60), 10);
        let ticket = ticket(&cache, b"c");
        cache.insert(
            ticket,
            b"c",
            &principal(),
            Some(Utc::now() + chrono::Duration::milliseconds(50)),
        );
        assert!(is_hit(&cache, b"c"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!is_hit(&cache, b"c"), "gone when the token expires");
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = trusted(Duration::from_secs(60), 3);
        for key in [b"a", b"b", b"c", b"d"] {
            let ticket = ticket(&cache, key);
            cache.insert(ticket, key, &principal(), None);
            assert!(cache.lock().entries.len() <= 3);
        }
        assert!(is_hit(&cache, b"d"), "the newest is kept");
    }

    #[test]
    fn a_disabled_cache_keeps_nothing() {
        let cache = TokenCache::disabled();
        cache.vouch(Instant::now() + Duration::from_secs(60));
        let ticket = ticket(&cache, b"a");
        cache.insert(ticket, b"a", &principal(), None);
        assert!(!is_hit(&cache, b"a"));
    }
}
