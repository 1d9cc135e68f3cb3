//! The engine's configuration as the core reads it: the validated config with every amount
//! already in integer micros, FX rates in nanos and time zones as offset tables.
//!
//! Python validates the user's TOML (`bidcore.config`, errors with key paths) and hands this
//! plan over as JSON; the core checks what it relies on again and never trusts a float for money.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub seat: String,
    pub currency: String,
    /// Base-currency nanos per unit, by currency code (the base itself at 1e9).
    pub fx: Vec<(String, i64)>,
    #[serde(default)]
    pub nurl: Option<String>,
    #[serde(default)]
    pub burl: Option<String>,
    #[serde(default)]
    pub lurl: Option<String>,
    /// Network time kept back from a request's `tmax` when the caller says how long the
    /// request waited (`Engine::bid`'s deadline).
    #[serde(default)]
    pub tmax_margin_ms: u64,
    pub shading: ShadingPlan,
    pub campaigns: Vec<CampaignPlan>,
    /// Layers of experiments (`bidcore.engine` computes the integer bucket ranges).
    #[serde(default)]
    pub experiments: Vec<LayerPlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerPlan {
    pub name: String,
    pub seed: String,
    pub hash_version: i64,
    /// Where the unit id is read from, in order (`user.id`, `user.buyeruid`, `device.ifa`,
    /// `id`); the request id is the last resort regardless.
    pub unit: Vec<String>,
    pub experiments: Vec<ExperimentPlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentPlan {
    pub key: String,
    /// The arms' hash seed (`bidcore.experiments.arm_seed`).
    pub seed: String,
    /// `[lo, hi)` over the 1,000 namespace buckets.
    pub namespace: (u32, u32),
    /// Per arm, `[lo, hi)` over the hash version's buckets.
    pub ranges: Vec<(u32, u32)>,
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub device_types: Vec<i32>,
    /// The campaigns the arms change; empty: every campaign.
    #[serde(default)]
    pub campaigns: Vec<String>,
    pub arms: Vec<ArmPlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmPlan {
    pub name: String,
    /// `(role, model key)`: the key names the model in the models handed to the engine.
    #[serde(default)]
    pub models: Vec<(String, String)>,
    #[serde(default)]
    pub shading: Option<ArmShadingPlan>,
    #[serde(default)]
    pub multiplier_ppm: Option<i64>,
    #[serde(default)]
    pub campaigns: Option<Vec<String>>,
    #[serde(default)]
    pub budget_share: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmShadingPlan {
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Micros of the bidder's currency.
    #[serde(default)]
    pub center: Option<i64>,
    #[serde(default)]
    pub scale: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadingPlan {
    pub enabled: bool,
    /// The price that wins half the time, in the bidder's currency.
    pub center: i64,
    pub scale: f64,
    #[serde(default)]
    pub segments: Vec<ShadingSegmentPlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadingSegmentPlan {
    pub center: i64,
    pub scale: f64,
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub device_types: Vec<i32>,
    #[serde(default)]
    pub media: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoalKind {
    Cpm,
    Cpc,
    Cpa,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignPlan {
    pub id: String,
    pub goal: GoalKind,
    /// The fixed CPM (`cpm`), or what a click (`cpc`) or an action (`cpa`) is worth; micros.
    pub amount: i64,
    pub max_bid: i64,
    pub min_bid: i64,
    #[serde(default)]
    pub deals: Vec<String>,
    #[serde(default)]
    pub deals_only: bool,
    #[serde(default)]
    pub targeting: TargetingPlan,
    /// Attribute values by name: the model features a feature spec reads as `campaign = name`.
    #[serde(default)]
    pub features: Vec<(String, f64)>,
    pub creatives: Vec<CreativePlan>,
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCapPlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCapPlan {
    pub count: u32,
    pub window_seconds: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetingPlan {
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub device_types: Vec<i32>,
    #[serde(default)]
    pub os: Vec<String>,
    #[serde(default)]
    pub connection_types: Vec<i32>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub domains_block: Vec<String>,
    #[serde(default)]
    pub bundles: Vec<String>,
    #[serde(default)]
    pub bundles_block: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub categories_block: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    #[serde(default)]
    pub daypart: Option<DaypartPlan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaypartPlan {
    /// `(from_unix_seconds, utc_offset_seconds)`, sorted: the zone's offsets over the years.
    pub transitions: Vec<(i64, i64)>,
    #[serde(default)]
    pub hours: Vec<u8>,
    #[serde(default)]
    pub weekdays: Vec<u8>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativePlan {
    pub id: String,
    pub media: String,
    pub adomain: Vec<String>,
    #[serde(default)]
    pub w: Option<u32>,
    #[serde(default)]
    pub h: Option<u32>,
    #[serde(default)]
    pub duration: Option<u32>,
    #[serde(default)]
    pub mime: Option<String>,
    #[serde(default)]
    pub cat: Vec<String>,
    #[serde(default)]
    pub attr: Vec<i32>,
    #[serde(default)]
    pub bundle: Option<String>,
    #[serde(default)]
    pub markup: Option<String>,
    #[serde(default)]
    pub nurl: Option<String>,
    #[serde(default)]
    pub burl: Option<String>,
    #[serde(default)]
    pub lurl: Option<String>,
}

impl Plan {
    /// Reads the plan `bidcore.engine` writes.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        serde_json::from_str(text).map_err(|err| format!("engine plan: {err}"))
    }
}
