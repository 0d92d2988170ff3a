//! The command line: serving, migrating, and setting up data.

use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::auth::service::{self as tokens, TokenOwner};
use crate::config::{DatabaseConfig, ServeConfig};
use crate::customers::service as customers;
use crate::domain::{BillingReason, RecurringInterval};
use crate::orders::model::Address;
use crate::orders::service::{self as orders, OrderDetails, OrderItemInput, PaidOrderInput};
use crate::organizations::service as organizations;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "refunds-server",
    version,
    about = "A refunds API server, wire-compatible with Polar's refunds API, on PostgreSQL"
)]
pub struct Cli {
    /// Log lines as readable text or as JSON objects.
    #[arg(
        long,
        global = true,
        env = "REFUNDS_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

// One command is parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (creates the database and applies migrations first).
    Serve(ServeConfig),
    /// Serve with demo data: the same as `serve --demo`.
    Demo(ServeConfig),
    /// Fill a database with paid orders and refunds, for benchmarks.
    Seed {
        /// How many paid orders to create.
        #[arg(long)]
        orders: u64,
        /// Succeeded refunds per order (0 to 100).
        #[arg(long, default_value_t = 1)]
        refunds_per_order: u32,
        /// Seed into this organization; a new one is created when omitted.
        #[arg(long)]
        organization_id: Option<Uuid>,
        /// Orders written per transaction.
        #[arg(long, default_value_t = crate::dev::seed::DEFAULT_BATCH_SIZE)]
        batch_size: u64,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Print the OpenAPI document (the committed `openapi/openapi.json`).
    Openapi,
    /// Apply the database migrations and exit.
    Migrate(DatabaseConfig),
    /// Create an organization and print it as JSON.
    CreateOrganization {
        #[arg(long)]
        name: String,
        /// Defaults to the name in lowercase with dashes.
        #[arg(long)]
        slug: Option<String>,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Create a user (the owner of personal access tokens) and print it as JSON.
    CreateUser {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Make a user a member of an organization.
    AddMember {
        #[arg(long)]
        user_id: Uuid,
        #[arg(long)]
        organization_id: Uuid,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Create an access token and print it once; only its hash is stored.
    CreateToken {
        /// An organization token (polar_oat_) for this organization...
        #[arg(long, conflicts_with = "user_id", required_unless_present = "user_id")]
        organization_id: Option<Uuid>,
        /// ...or a personal token (polar_pat_) for this user.
        #[arg(long)]
        user_id: Option<Uuid>,
        /// Comma-separated scopes: refunds:read, refunds:write, orders:read, orders:write,
        /// payments:read, webhooks:read, webhooks:write.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "refunds:read,refunds:write"
        )]
        scopes: Vec<String>,
        /// Lifetime in seconds; the token never expires when omitted.
        #[arg(long)]
        expires_in_seconds: Option<i64>,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Create a customer and print it as JSON.
    CreateCustomer {
        #[arg(long)]
        organization_id: Uuid,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Your own id for the customer (the external_customer_id filter).
        #[arg(long)]
        external_id: Option<String>,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Create a paid order with its succeeded payment and print its id as JSON.
    CreateOrder {
        #[arg(long)]
        organization_id: Uuid,
        #[arg(long)]
        customer_id: Uuid,
        /// Net amount in minor units (cents).
        #[arg(long)]
        net_amount: i64,
        /// Tax amount in minor units.
        #[arg(long, default_value_t = 0)]
        tax_amount: i64,
        #[arg(long, default_value = "usd")]
        currency: String,
        /// Makes it a subscription order.
        #[arg(long)]
        subscription_id: Option<Uuid>,
        /// Customer balance applied: positive for a debt added, negative for credit used.
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        applied_balance_amount: i64,
        /// purchase, subscription_create, subscription_cycle, subscription_update or
        /// subscription_meter_cycle (default: subscription_create with --subscription-id,
        /// else purchase).
        #[arg(long)]
        billing_reason: Option<BillingReason>,
        /// The name on the invoice.
        #[arg(long)]
        billing_name: Option<String>,
        /// The billing address's country (ISO 3166-1 alpha-2); the other --billing-* parts
        /// need it.
        #[arg(long)]
        billing_country: Option<String>,
        #[arg(long, requires = "billing_country")]
        billing_line1: Option<String>,
        #[arg(long, requires = "billing_country")]
        billing_postal_code: Option<String>,
        #[arg(long, requires = "billing_country")]
        billing_city: Option<String>,
        #[arg(long, requires = "billing_country")]
        billing_state: Option<String>,
        /// The product sold (default: none, or a monthly "Subscription" for a subscription).
        #[arg(long)]
        product_id: Option<Uuid>,
        #[arg(long)]
        product_name: Option<String>,
        /// day, week, month or year: the product recurs.
        #[arg(long)]
        product_recurring_interval: Option<RecurringInterval>,
        /// A line `LABEL=AMOUNT` or `LABEL=AMOUNT:TAX`, repeatable; the lines add up to the
        /// net and tax amounts (default: one line for the whole order).
        #[arg(long = "item", value_parser = parse_item)]
        items: Vec<OrderItemInput>,
        /// `card` (default) or another method's name.
        #[arg(long)]
        payment_method: Option<String>,
        #[arg(long)]
        card_brand: Option<String>,
        #[arg(long)]
        card_last4: Option<String>,
        /// A metadata pair `KEY=VALUE` (a string), repeatable.
        #[arg(long = "metadata", value_parser = parse_metadata)]
        metadata: Vec<(String, String)>,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

fn parse_item(text: &str) -> Result<OrderItemInput, String> {
    let (label, amounts) = text
        .rsplit_once('=')
        .ok_or("expected LABEL=AMOUNT or LABEL=AMOUNT:TAX")?;
    let (amount, tax_amount) = amounts.split_once(':').unwrap_or((amounts, "0"));
    Ok(OrderItemInput {
        label: label.to_owned(),
        amount: amount
            .parse()
            .map_err(|_| format!("bad amount {amount:?}"))?,
        tax_amount: tax_amount
            .parse()
            .map_err(|_| format!("bad tax amount {tax_amount:?}"))?,
        proration: false,
    })
}

fn parse_metadata(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| "expected KEY=VALUE".to_owned())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    use crate::app::connect_and_migrate;
    match cli.command {
        Command::Serve(config) => crate::app::run(config).await,
        Command::Demo(config) => {
            crate::app::run(ServeConfig {
                demo: true,
                ..config
            })
            .await
        }
        Command::Seed {
            orders,
            refunds_per_order,
            organization_id,
            batch_size,
            database,
        } => {
            let pool = connect_and_migrate(&database).await?;
            let options = crate::dev::seed::SeedOptions {
                orders,
                refunds_per_order,
                organization_id,
                batch_size,
                progress: true,
            };
            let report = crate::dev::seed::seed(&pool, &options).await?;
            print_json(&serde_json::json!({
                "organization_id": report.organization_id,
                "orders": report.orders,
                "refunds": report.refunds,
                "seconds": report.elapsed.as_secs_f64(),
            }))
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::app::openapi::document())?
            );
            Ok(())
        }
        Command::Migrate(database) => {
            connect_and_migrate(&database).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::CreateOrganization {
            name,
            slug,
            database,
        } => {
            let pool = connect_and_migrate(&database).await?;
            print_json(&organizations::create_organization(&pool, &name, slug.as_deref()).await?)
        }
        Command::CreateUser { email, database } => {
            let pool = connect_and_migrate(&database).await?;
            print_json(&organizations::create_user(&pool, &email).await?)
        }
        Command::AddMember {
            user_id,
            organization_id,
            database,
        } => {
            let pool = connect_and_migrate(&database).await?;
            organizations::add_membership(&pool, user_id, organization_id).await?;
            print_json(&serde_json::json!({"user_id": user_id, "organization_id": organization_id}))
        }
        Command::CreateToken {
            organization_id,
            user_id,
            scopes,
            expires_in_seconds,
            database,
        } => {
            let pool = connect_and_migrate(&database).await?;
            let owner = match (organization_id, user_id) {
                (Some(id), _) => TokenOwner::Organization(id),
                (None, Some(id)) => TokenOwner::User(id),
                (None, None) => unreachable!("clap requires one of them"),
            };
            print_json(&tokens::create_token(&pool, owner, scopes, expires_in_seconds).await?)
        }
        Command::CreateCustomer {
            organization_id,
            email,
            name,
            external_id,
            database,
        } => {
            let pool = connect_and_migrate(&database).await?;
            let customer = customers::create_customer(
                &pool,
                organization_id,
                &email,
                name.as_deref(),
                external_id.as_deref(),
            )
            .await?;
            print_json(&customer)
        }
        Command::CreateOrder {
            organization_id,
            customer_id,
            net_amount,
            tax_amount,
            currency,
            subscription_id,
            applied_balance_amount,
            billing_reason,
            billing_name,
            billing_country,
            billing_line1,
            billing_postal_code,
            billing_city,
            billing_state,
            product_id,
            product_name,
            product_recurring_interval,
            items,
            payment_method,
            card_brand,
            card_last4,
            metadata,
            database,
        } => {
            let pool = connect_and_migrate(&database).await?;
            let billing_address = billing_country.map(|country| Address {
                line1: billing_line1,
                line2: None,
                postal_code: billing_postal_code,
                city: billing_city,
                state: billing_state,
                country,
            });
            let metadata: serde_json::Map<String, serde_json::Value> = metadata
                .into_iter()
                .map(|(key, value)| (key, serde_json::Value::String(value)))
                .collect();
            let input = PaidOrderInput {
                organization_id,
                customer_id,
                subscription_id,
                currency,
                net_amount,
                tax_amount,
                applied_balance_amount,
                metadata: serde_json::Value::Object(metadata),
                details: OrderDetails {
                    billing_reason,
                    billing_name,
                    billing_address,
                    product_id,
                    product_name,
                    product_recurring_interval,
                    items,
                    payment_method,
                    card_brand,
                    card_last4,
                    payment: None,
                },
            };
            print_json(&orders::create_paid_order(&pool, input).await?)
        }
    }
}
