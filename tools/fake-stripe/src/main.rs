//! Runs the fake Stripe on its own: `fake-stripe [ADDRESS]` (default 127.0.0.1:12111).
//! Settings: `FAKE_STRIPE_SECRET_KEY`, `FAKE_STRIPE_WEBHOOK_SECRET`, `FAKE_STRIPE_WEBHOOK_URL`.
//! Charges are added with `POST /fake/charges {"id", "amount", "currency"}`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:12111".into());
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let fake = fake_stripe::FakeStripe::start(
        address.parse()?,
        fake_stripe::Settings {
            secret_key: env("FAKE_STRIPE_SECRET_KEY", "sk_test_fake"),
            webhook_secret: env("FAKE_STRIPE_WEBHOOK_SECRET", "whsec_fake"),
        },
    )
    .await?;
    if let Ok(url) = std::env::var("FAKE_STRIPE_WEBHOOK_URL") {
        fake.set_webhook_url(&url);
    }
    println!("fake Stripe listening on {}", fake.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
