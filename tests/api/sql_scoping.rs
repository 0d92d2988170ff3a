//! Keeps the sharding plan of docs/scaling.md honest: every table the migrations create is
//! classified as distributed by `organization_id` or as a reference table (and named so in
//! the plan), and every SQL statement in `src/` that touches a distributed table constrains
//! each use of it by `organization_id` (a filter or join condition, or the column of an
//! insert), which is what keeps a statement on one shard. The few statements that do not
//! are listed below with the reason.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Tables distributed by `organization_id`: an organization's own rows.
const DISTRIBUTED: &[&str] = &[
    "customers",
    "orders",
    "payments",
    "disputes",
    "refunds",
    "refund_counts",
    "order_items",
    "webhook_endpoints",
    "webhook_events",
    "webhook_deliveries",
];

/// Tables distributed by the caller (`scope`: an organization, or the user of a personal
/// token), which may span organizations: idempotency keys. Every statement constrains
/// `scope` instead.
const DISTRIBUTED_BY_CALLER: &[&str] = &["idempotency_keys"];

/// Tables of events from outside services, keyed by the service's own id and read by it
/// alone, never joined: distributed by that key, on no organization's shard.
const DISTRIBUTED_BY_OWN_KEY: &[&str] = &["stripe_events"];

/// Tables copied whole to every node: small, rarely written, read by requests before the
/// organization is known (a token is looked up by its hash) or for every organization.
const REFERENCE: &[&str] = &["organizations", "users", "memberships", "access_tokens"];

/// Statements that reach a distributed table without its `organization_id`, found by a
/// piece of their text and the table (or alias) concerned.
const ALLOWED: &[(&str, &str, &str)] = &[
    // The count of a filtered list is built by QueryBuilder: its WHERE clause comes from
    // `push_filters`, whose first condition is always `r.organization_id` (a unit test in
    // refunds::repo checks every shape).
    (
        "SELECT count(*) AS total_count FROM refunds r",
        "r",
        "its WHERE clause is appended by refunds::repo::push_filters",
    ),
    // The admin API acts across organizations by design (an operator's tool, not a
    // tenant's): by primary key, a fan-out to every shard under Citus, which is fine at
    // its rate.
    (
        "SELECT organization_id FROM orders WHERE id = $1",
        "orders",
        "admin API: finds the organization of an order",
    ),
    (
        "SELECT order_id FROM disputes WHERE id = $1",
        "disputes",
        "admin API: finds the order of a dispute (disputes move only through it)",
    ),
    (
        "FROM orders WHERE id = $1",
        "orders",
        "admin API: reads an order by id",
    ),
    (
        "UPDATE orders SET refunds_blocked",
        "orders",
        "admin API: blocks refunds of an order by id",
    ),
    // Inside the refund's transaction, after the order row was locked by a statement scoped
    // to the caller's organizations: these rows belong to that order (foreign keys on
    // (organization_id, order_id)). Under Citus each needs `organization_id` added to be
    // routed to the shard the transaction is on (docs/scaling.md, what changes).
    (
        "FROM payments p",
        "p",
        "correlated to the order row locked by organization",
    ),
    (
        "SET refunded_amount = $2",
        "orders",
        "the order row this transaction locked by organization",
    ),
    (
        "UPDATE refunds",
        "refunds",
        "a refund of the order this transaction locked by organization",
    ),
    (
        "FROM refunds WHERE id = $1 FOR UPDATE",
        "refunds",
        "a refund of the order this transaction locked by organization",
    ),
    (
        "FROM disputes WHERE id = $1",
        "disputes",
        "a dispute of the order this transaction locked",
    ),
    (
        "UPDATE disputes SET status",
        "disputes",
        "a dispute of the order this transaction locked",
    ),
    // A processor's events and the recovery worker name a charge, a refund or a dispute by
    // the processor's id or our own, not by organization: the lookup finds the organization
    // (a fan-out under Citus, at the rate of processor events), then the order is locked by
    // a statement scoped by it.
    (
        "SELECT order_id, organization_id FROM payments WHERE processor",
        "payments",
        "a processor's event finds the order and organization of its charge",
    ),
    (
        "SELECT order_id, organization_id FROM refunds WHERE id = $1",
        "refunds",
        "a processor's event or a worker finds the order and organization of a refund",
    ),
    (
        "SELECT id FROM refunds WHERE processor = $1 AND processor_id = $2",
        "refunds",
        "a processor's event finds our refund by the processor's id",
    ),
    (
        "SELECT id FROM disputes WHERE processor_id = $1",
        "disputes",
        "a processor's event finds our dispute by the processor's id (its order is locked)",
    ),
    (
        "UPDATE disputes SET processor_id",
        "disputes",
        "a dispute of the order this transaction locked",
    ),
    (
        "UPDATE orders SET sandbox_refund_outcome",
        "orders",
        "admin API: sets the sandbox's answer for an order by id",
    ),
    // The workers visit every shard by design, a batch at a time (the recovery worker's
    // lease is an `UPDATE refunds`, allowed above).
    (
        "WHERE status = 'pending' AND processor = $1",
        "refunds",
        "the sandbox's settling of pending refunds",
    ),
    (
        "WHERE refund_id = $1 AND route = $4 AND response_status IS NULL",
        "idempotency_keys",
        "recovery completes the cut-off key of a refund it settled, found by the refund",
    ),
    // The periodic purge of expired keys visits every shard by design, in small batches.
    (
        "DELETE FROM idempotency_keys WHERE ctid",
        "idempotency_keys",
        "the purge of expired keys",
    ),
    // The webhook delivery worker's queue spans every organization by design: it finds
    // work on every shard, then acts on each row by its organization. (Its lease of
    // endpoints with first attempts waiting reads every endpoint too; the check takes the
    // correlated look at each endpoint's events, by organization, for a constraint.)
    (
        "SELECT organization_id, id FROM webhook_events WHERE state = 'pending' AND attempts > 0",
        "webhook_events",
        "webhook worker: retries that are due",
    ),
    (
        "SELECT organization_id, id FROM webhook_events WHERE created_at < $1",
        "webhook_events",
        "webhook worker: events old enough to archive",
    ),
    (
        "FROM webhook_events WHERE state = 'pending'",
        "webhook_events",
        "webhook worker: the queue gauges",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

/// The string literals of Rust source, with escapes and line continuations resolved.
/// Comments, char literals and lifetimes are skipped.
fn string_literals(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            '\'' => {
                // '"' or '\'' or '\n'; otherwise a lifetime.
                if chars.get(i + 1) == Some(&'\\') {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            'r' if matches!(chars.get(i + 1), Some('#') | Some('"'))
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let start = j + 1;
                let mut end = start;
                loop {
                    if end >= chars.len() {
                        break;
                    }
                    if chars[end] == '"'
                        && (0..hashes).all(|h| chars.get(end + 1 + h) == Some(&'#'))
                    {
                        break;
                    }
                    end += 1;
                }
                out.push(chars[start..end.min(chars.len())].iter().collect());
                i = end + 1 + hashes;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        match chars.get(i + 1) {
                            Some('\n') => {
                                i += 2;
                                while i < chars.len() && chars[i].is_whitespace() {
                                    i += 1;
                                }
                                continue;
                            }
                            Some('n') => text.push('\n'),
                            Some(other) => text.push(*other),
                            None => {}
                        }
                        i += 2;
                    } else {
                        text.push(chars[i]);
                        i += 1;
                    }
                }
                out.push(text);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The SQL statements of `src/`: string literals that begin with a statement's keyword.
fn statements() -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    files(&root().join("src"), "rs", &mut paths);
    let mut out = Vec::new();
    for path in paths {
        let code = fs::read_to_string(&path).expect("read source");
        for literal in string_literals(&code) {
            let first = literal.split_whitespace().next().unwrap_or_default();
            if matches!(first, "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "WITH") {
                out.push((path.clone(), literal));
            }
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Symbol(char),
}

/// Words and symbols of SQL; quoted text and `--` comments are left out.
fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_quote = false;
    let mut in_comment = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quote {
            in_quote = c != '\'';
            continue;
        }
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if c == '-' && chars.peek() == Some(&'-') {
            in_comment = true;
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '$' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(&mut word)));
        }
        if c == '\'' {
            in_quote = true;
        } else if !c.is_whitespace() {
            out.push(Token::Symbol(c));
        }
    }
    if !word.is_empty() {
        out.push(Token::Word(word));
    }
    out
}

const NOT_AN_ALIAS: &[&str] = &[
    "where",
    "set",
    "on",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "cross",
    "join",
    "values",
    "order",
    "group",
    "limit",
    "offset",
    "for",
    "using",
    "returning",
    "union",
    "having",
    "window",
    "natural",
    "lateral",
    "select",
    "default",
];

/// A use of a table: its name, and the alias statements refer to it by (the name itself
/// when it has none).
#[derive(Debug)]
struct TableUse {
    table: String,
    alias: String,
    /// `INSERT INTO table (columns…)`: the columns.
    inserted_columns: Option<Vec<String>>,
}

fn table_uses(sql: &str) -> Vec<TableUse> {
    let tokens = tokens(sql);
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.to_ascii_lowercase()),
        _ => None,
    };
    let mut uses = Vec::new();
    for i in 0..tokens.len() {
        let Some(keyword) = word(i) else { continue };
        if !matches!(keyword.as_str(), "from" | "join" | "update" | "into") {
            continue;
        }
        let Some(table) = word(i + 1) else { continue };
        let mut next = i + 2;
        if word(next).as_deref() == Some("as") {
            next += 1;
        }
        let alias = match word(next) {
            Some(alias) if !NOT_AN_ALIAS.contains(&alias.as_str()) => alias,
            _ => table.clone(),
        };
        let inserted_columns =
            (keyword == "into" && tokens.get(i + 2) == Some(&Token::Symbol('('))).then(|| {
                tokens[i + 3..]
                    .iter()
                    .take_while(|t| **t != Token::Symbol(')'))
                    .filter_map(|t| match t {
                        Token::Word(w) => Some(w.to_ascii_lowercase()),
                        Token::Symbol(_) => None,
                    })
                    .collect()
            });
        uses.push(TableUse {
            table,
            alias,
            inserted_columns,
        });
    }
    uses
}

/// Whether `alias.organization_id` (or a bare `organization_id` when the statement uses
/// one table without an alias) appears next to `=` (`= x`, `x =`, `= ANY(…)`).
fn constrained_by_organization(sql: &str, table_use: &TableUse, only_table: bool) -> bool {
    constrained_by(sql, table_use, only_table, "organization_id")
}

/// Whether `alias.column` (or a bare `column` when the statement uses one table without an
/// alias) appears next to `=`, or is a column of the insert.
fn constrained_by(sql: &str, table_use: &TableUse, only_table: bool, column: &str) -> bool {
    if let Some(columns) = &table_use.inserted_columns {
        return columns.iter().any(|c| c == column);
    }
    let tokens = tokens(sql);
    let is_word = |i: usize, expected: &str| matches!(tokens.get(i), Some(Token::Word(w)) if w.eq_ignore_ascii_case(expected));
    (0..tokens.len()).any(|i| {
        if !is_word(i, column) {
            return false;
        }
        let qualified =
            i >= 2 && tokens[i - 1] == Token::Symbol('.') && is_word(i - 2, &table_use.alias);
        let bare = only_table && (i == 0 || tokens[i - 1] != Token::Symbol('.'));
        if !(qualified || bare) {
            return false;
        }
        let start = if qualified { i - 2 } else { i };
        let after = tokens.get(i + 1) == Some(&Token::Symbol('='));
        let before = start >= 1 && tokens[start - 1] == Token::Symbol('=');
        after || before
    })
}

#[test]
fn the_checker_sees_scoped_and_unscoped_uses() {
    let scoped = "SELECT * FROM orders o JOIN payments p ON p.order_id = o.id \
                  AND p.organization_id = o.organization_id WHERE o.organization_id = ANY($1)";
    let uses = table_uses(scoped);
    assert_eq!(uses.len(), 2);
    assert!(
        uses.iter()
            .all(|u| constrained_by_organization(scoped, u, false))
    );
    let unscoped = "SELECT organization_id FROM orders WHERE id = $1";
    let uses = table_uses(unscoped);
    assert!(!constrained_by_organization(unscoped, &uses[0], true));
    let joined = "SELECT * FROM refunds r LEFT JOIN disputes d ON d.id = r.dispute_id \
                  WHERE r.organization_id = $1";
    let uses = table_uses(joined);
    assert!(constrained_by_organization(joined, &uses[0], false));
    assert!(!constrained_by_organization(joined, &uses[1], false));
    let insert = "INSERT INTO refunds (id, organization_id) VALUES ($1, $2)";
    assert!(constrained_by_organization(
        insert,
        &table_uses(insert)[0],
        true
    ));
    let literals = string_literals(
        "let c = '\"'; f::<'a>(\"SELECT 1 \\\n    FROM x\"); // \"not this\"\nr#\"raw \"q\"\"#",
    );
    assert_eq!(literals, vec!["SELECT 1 FROM x", "raw \"q\""]);
}

#[test]
fn every_table_is_classified_and_named_in_the_plan() {
    let mut migrations = Vec::new();
    files(&root().join("migrations"), "sql", &mut migrations);
    let mut created = BTreeSet::new();
    for path in &migrations {
        let sql = fs::read_to_string(path).unwrap();
        let tokens = tokens(&sql);
        for i in 0..tokens.len().saturating_sub(2) {
            if let (Token::Word(create), Token::Word(table), Token::Word(name)) =
                (&tokens[i], &tokens[i + 1], &tokens[i + 2])
                && create.eq_ignore_ascii_case("create")
                && table.eq_ignore_ascii_case("table")
            {
                created.insert(name.to_ascii_lowercase());
            }
        }
    }
    let classified: BTreeSet<String> = DISTRIBUTED
        .iter()
        .chain(DISTRIBUTED_BY_CALLER)
        .chain(DISTRIBUTED_BY_OWN_KEY)
        .chain(REFERENCE)
        .map(|t| t.to_string())
        .collect();
    let unclassified: Vec<&String> = created.difference(&classified).collect();
    assert!(
        unclassified.is_empty(),
        "tables neither distributed nor reference in tests/api/sql_scoping.rs (and \
         docs/scaling.md): {unclassified:?}"
    );
    let gone: Vec<&String> = classified.difference(&created).collect();
    assert!(
        gone.is_empty(),
        "classified tables no migration creates: {gone:?}"
    );
    let plan = fs::read_to_string(root().join("docs/scaling.md")).unwrap();
    for table in DISTRIBUTED
        .iter()
        .chain(DISTRIBUTED_BY_CALLER)
        .chain(DISTRIBUTED_BY_OWN_KEY)
        .chain(REFERENCE)
    {
        assert!(
            plan.contains(&format!("`{table}`")),
            "docs/scaling.md does not name the table `{table}`"
        );
    }
}

#[test]
fn every_statement_on_an_organizations_rows_is_scoped_by_organization() {
    let statements = statements();
    assert!(
        statements.len() >= 20,
        "found only {} statements: is the source scan broken?",
        statements.len()
    );
    let mut used_allowances = BTreeSet::new();
    let mut offences = Vec::new();
    for (path, sql) in &statements {
        let uses = table_uses(sql);
        let only_table = uses.len() == 1;
        for table_use in &uses {
            let column = if DISTRIBUTED.contains(&table_use.table.as_str()) {
                "organization_id"
            } else if DISTRIBUTED_BY_CALLER.contains(&table_use.table.as_str()) {
                "scope"
            } else {
                continue;
            };
            if constrained_by(sql, table_use, only_table, column) {
                continue;
            }
            let allowance = ALLOWED
                .iter()
                .position(|(text, alias, _)| sql.contains(text) && *alias == table_use.alias);
            match allowance {
                Some(index) => {
                    used_allowances.insert(index);
                }
                None => offences.push(format!(
                    "{}: `{}` ({}) is not constrained by {column} in:\n{}",
                    path.strip_prefix(root()).unwrap_or(path).display(),
                    table_use.table,
                    table_use.alias,
                    sql.trim()
                )),
            }
        }
    }
    assert!(
        offences.is_empty(),
        "statements that would leave their organization's shard (add a condition on \
         organization_id (or scope), or an entry with its reason to ALLOWED):\n\n{}",
        offences.join("\n\n")
    );
    let stale: Vec<&str> = ALLOWED
        .iter()
        .enumerate()
        .filter(|(index, _)| !used_allowances.contains(index))
        .map(|(_, (text, _, _))| *text)
        .collect();
    assert!(
        stale.is_empty(),
        "allow-list entries that match no unscoped statement any more: {stale:?}"
    );
}
