//! Print the JSON Schema of the policy format, generated from the serde
//! model. The checked-in copy is `policies/cordon-policy.schema.json`:
//!
//! ```text
//! cargo run --features schema --example gen-schema > policies/cordon-policy.schema.json
//! ```

fn main() {
    print!("{}", cordon::policy::schema::generate_text());
}
