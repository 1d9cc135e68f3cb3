//! The targeting index: which campaigns a request may go to, found with set operations.
//!
//! Per rule, a bitset of the campaigns without that rule and, per listed value, a bitset of the
//! campaigns listing it. A request's eligible campaigns are the AND over rules of
//! "unrestricted, or listing the request's value" (allow-lists) and "not listing it"
//! (block-lists), so the work per request follows the number of rules and request values, not
//! the number of campaigns times their rules. Dayparts, one check per campaign that has one, are
//! the exception: a handful of campaigns at most in practice.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use super::bitset::Bitset;
use super::plan::{CampaignPlan, DaypartPlan};
use super::reason::Reason;
use crate::openrtb::Request;

/// One rule over one kind of value.
#[derive(Debug, Clone)]
struct ValueIndex<K> {
    /// Campaigns whose list for this rule is empty.
    unrestricted: Bitset,
    by_value: HashMap<K, Bitset>,
}

impl<K: Hash + Eq + Clone> ValueIndex<K> {
    fn build(campaigns: usize, lists: impl Iterator<Item = Vec<K>>) -> Self {
        let mut index = ValueIndex { unrestricted: Bitset::empty(campaigns), by_value: HashMap::new() };
        for (c, list) in lists.enumerate() {
            if list.is_empty() {
                index.unrestricted.insert(c);
            }
            for value in list {
                index.by_value.entry(value).or_insert_with(|| Bitset::empty(campaigns)).insert(c);
            }
        }
        index
    }

    /// Keeps in `eligible` the campaigns without the rule or listing one of `values`.
    fn allow<'v, Q>(&self, values: impl Iterator<Item = &'v Q>, eligible: &mut Bitset, scratch: &mut Bitset)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'v,
    {
        if self.by_value.is_empty() {
            return;
        }
        scratch.copy_from(&self.unrestricted);
        for value in values {
            if let Some(set) = self.by_value.get(value) {
                scratch.or(set);
            }
        }
        eligible.and(scratch);
    }

    /// Drops from `eligible` the campaigns listing one of `values`.
    fn block<'v, Q>(&self, values: impl Iterator<Item = &'v Q>, eligible: &mut Bitset)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'v,
    {
        if self.by_value.is_empty() {
            return;
        }
        for value in values {
            if let Some(set) = self.by_value.get(value) {
                eligible.and_not(set);
            }
        }
    }

    fn allows<'v, Q>(&self, campaign: usize, mut values: impl Iterator<Item = &'v Q>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'v,
    {
        self.unrestricted.contains(campaign)
            || values.any(|v| self.by_value.get(v).is_some_and(|set| set.contains(campaign)))
    }

    fn blocks<'v, Q>(&self, campaign: usize, mut values: impl Iterator<Item = &'v Q>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'v,
    {
        values.any(|v| self.by_value.get(v).is_some_and(|set| set.contains(campaign)))
    }
}

/// Hours and weekdays in a time zone, the zone as a table of offsets.
#[derive(Debug, Clone)]
struct Daypart {
    campaign: usize,
    transitions: Vec<(i64, i64)>,
    /// Bit h set: hour h allowed (all set when the config lists none).
    hours: u32,
    weekdays: u8,
}

impl Daypart {
    fn new(campaign: usize, plan: &DaypartPlan) -> Self {
        let hours = if plan.hours.is_empty() {
            (1 << 24) - 1
        } else {
            plan.hours.iter().filter(|&&h| h < 24).fold(0, |m, &h| m | 1 << h)
        };
        let weekdays = if plan.weekdays.is_empty() {
            0x7f
        } else {
            plan.weekdays.iter().filter(|&&d| d < 7).fold(0, |m, &d| m | 1 << d)
        };
        Daypart { campaign, transitions: plan.transitions.clone(), hours, weekdays }
    }

    fn admits(&self, now: f64) -> bool {
        if !now.is_finite() {
            return false;
        }
        let t = now.floor() as i64;
        // The offset in force at t: the last transition at or before it (the first before any).
        let i = self.transitions.partition_point(|&(from, _)| from <= t);
        let offset = self.transitions.get(i.saturating_sub(1)).map_or(0, |&(_, o)| o);
        let local = t + offset;
        let hour = local.rem_euclid(86_400) / 3_600;
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7);
        self.hours & (1 << hour) != 0 && self.weekdays & (1 << weekday) != 0
    }
}

/// What targeting reads from a request, read once.
#[derive(Debug, Default)]
pub struct RequestFacts {
    pub country: String,
    pub os: String,
    pub site_domain: String,
    pub has_site_domain: bool,
    pub personal: bool,
}

impl RequestFacts {
    pub fn fill(&mut self, request: &Request<'_>) {
        let device = request.device.as_deref();
        let geo = device.and_then(|d| d.geo.as_ref());
        self.country.clear();
        if let Some(country) = geo.and_then(|g| g.country.as_ref()) {
            self.country.extend(country.chars().map(|c| c.to_ascii_uppercase()));
        }
        self.os.clear();
        if let Some(os) = device.and_then(|d| d.os.as_ref()) {
            self.os.extend(os.chars().map(|c| c.to_ascii_lowercase()));
        }
        // Lower-cased into the buffer kept from the last request: no allocation per request.
        self.site_domain.clear();
        self.has_site_domain = false;
        if let Some(domain) = request.site.as_deref().and_then(|s| s.domain.as_ref()) {
            self.site_domain.extend(domain.chars().map(|c| c.to_ascii_lowercase()));
            self.has_site_domain = true;
        }
        self.personal = request.personal_data_allowed();
    }
}

#[derive(Debug, Clone)]
pub struct TargetingIndex {
    campaigns: usize,
    countries: ValueIndex<Box<str>>,
    regions: ValueIndex<Box<str>>,
    device_types: ValueIndex<i32>,
    os: ValueIndex<Box<str>>,
    connection_types: ValueIndex<i32>,
    domains: ValueIndex<Box<str>>,
    domains_block: ValueIndex<Box<str>>,
    bundles: ValueIndex<Box<str>>,
    bundles_block: ValueIndex<Box<str>>,
    categories: ValueIndex<Box<str>>,
    categories_block: ValueIndex<Box<str>>,
    segments: ValueIndex<Box<str>>,
    dayparts: Vec<Daypart>,
}

fn texts(list: &[String], normalize: fn(&str) -> String) -> Vec<Box<str>> {
    list.iter().map(|s| normalize(s).into_boxed_str()).collect()
}

fn same(s: &str) -> String {
    s.to_owned()
}

impl TargetingIndex {
    pub fn build(campaigns: &[CampaignPlan]) -> Self {
        let n = campaigns.len();
        let t = |f: fn(&CampaignPlan) -> &[String], norm: fn(&str) -> String| {
            ValueIndex::build(n, campaigns.iter().map(|c| texts(f(c), norm)))
        };
        TargetingIndex {
            campaigns: n,
            countries: t(|c| &c.targeting.countries, str::to_ascii_uppercase),
            regions: t(|c| &c.targeting.regions, same),
            device_types: ValueIndex::build(n, campaigns.iter().map(|c| c.targeting.device_types.clone())),
            os: t(|c| &c.targeting.os, str::to_ascii_lowercase),
            connection_types: ValueIndex::build(n, campaigns.iter().map(|c| c.targeting.connection_types.clone())),
            domains: t(|c| &c.targeting.domains, str::to_ascii_lowercase),
            domains_block: t(|c| &c.targeting.domains_block, str::to_ascii_lowercase),
            bundles: t(|c| &c.targeting.bundles, same),
            bundles_block: t(|c| &c.targeting.bundles_block, same),
            categories: t(|c| &c.targeting.categories, same),
            categories_block: t(|c| &c.targeting.categories_block, same),
            segments: t(|c| &c.targeting.segments, same),
            dayparts: campaigns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.targeting.daypart.as_ref().map(|d| Daypart::new(i, d)))
                .collect(),
        }
    }

    /// The campaigns `request` may go to, into `eligible` (`scratch` is working space; both as
    /// wide as the campaign list).
    pub fn eligible(
        &self,
        request: &Request<'_>,
        facts: &RequestFacts,
        now: f64,
        eligible: &mut Bitset,
        scratch: &mut Bitset,
    ) {
        let v = Values::new(request, facts);
        self.countries.allow(v.country(), eligible, scratch);
        self.regions.allow(v.region.iter().copied(), eligible, scratch);
        self.device_types.allow(v.device_type.iter(), eligible, scratch);
        self.os.allow(v.os(), eligible, scratch);
        self.connection_types.allow(v.connection_type.iter(), eligible, scratch);
        self.domains.allow(v.domain(), eligible, scratch);
        self.domains_block.block(v.domain(), eligible);
        self.bundles.allow(v.bundle.iter().copied(), eligible, scratch);
        self.bundles_block.block(v.bundle.iter().copied(), eligible);
        self.categories.allow(v.categories(), eligible, scratch);
        self.categories_block.block(v.categories(), eligible);
        self.segments.allow(v.segments(), eligible, scratch);
        for daypart in &self.dayparts {
            if eligible.contains(daypart.campaign) && !daypart.admits(now) {
                scratch.clear();
                scratch.insert(daypart.campaign);
                eligible.and_not(scratch);
            }
        }
    }

    /// The first rule (in `docs/engine.md`'s order) that keeps `campaign` from `request`; what
    /// `explain` reports. Slow on purpose: one campaign at a time, rule by rule.
    pub fn first_failure(
        &self,
        campaign: usize,
        request: &Request<'_>,
        facts: &RequestFacts,
        now: f64,
    ) -> Option<Reason> {
        debug_assert!(campaign < self.campaigns);
        let v = Values::new(request, facts);
        let c = campaign;
        let checks = [
            (self.countries.allows(c, v.country()), Reason::Country),
            (self.regions.allows(c, v.region.iter().copied()), Reason::Region),
            (self.device_types.allows(c, v.device_type.iter()), Reason::DeviceType),
            (self.os.allows(c, v.os()), Reason::Os),
            (self.connection_types.allows(c, v.connection_type.iter()), Reason::ConnectionType),
            (self.domains.allows(c, v.domain()), Reason::Domain),
            (!self.domains_block.blocks(c, v.domain()), Reason::DomainBlock),
            (self.bundles.allows(c, v.bundle.iter().copied()), Reason::Bundle),
            (!self.bundles_block.blocks(c, v.bundle.iter().copied()), Reason::BundleBlock),
            (self.categories.allows(c, v.categories()), Reason::Category),
            (!self.categories_block.blocks(c, v.categories()), Reason::CategoryBlock),
            (self.segments.allows(c, v.segments()), Reason::Segment),
            (self.dayparts.iter().filter(|d| d.campaign == c).all(|d| d.admits(now)), Reason::Daypart),
        ];
        checks.iter().find(|(ok, _)| !ok).map(|&(_, reason)| reason)
    }
}

/// The request's value for each rule; an absent field has none (matches no list).
struct Values<'r, 'a> {
    facts: &'r RequestFacts,
    region: Option<&'r str>,
    device_type: Option<i32>,
    connection_type: Option<i32>,
    bundle: Option<&'r str>,
    categories: &'r [crate::openrtb::Str<'a>],
    request: &'r Request<'a>,
}

impl<'r, 'a: 'r> Values<'r, 'a> {
    fn new(request: &'r Request<'a>, facts: &'r RequestFacts) -> Self {
        let device = request.device.as_deref();
        let site_cats = request.site.as_deref().map(|s| s.cat.as_deref().unwrap_or(&[]));
        let app_cats = request.app.as_deref().map(|a| a.cat.as_deref().unwrap_or(&[]));
        Values {
            facts,
            region: device.and_then(|d| d.geo.as_ref()).and_then(|g| g.region.as_ref()).map(|s| s.as_str()),
            device_type: device.and_then(|d| d.devicetype),
            connection_type: device.and_then(|d| d.connectiontype),
            bundle: request.app.as_deref().and_then(|a| a.bundle.as_ref()).map(|s| s.as_str()),
            categories: site_cats.or(app_cats).unwrap_or(&[]),
            request,
        }
    }

    fn country(&self) -> impl Iterator<Item = &'r str> {
        let c = self.facts.country.as_str();
        (!c.is_empty() || self.has_country()).then_some(c).into_iter()
    }

    fn has_country(&self) -> bool {
        self.request.device.as_deref().and_then(|d| d.geo.as_ref()).is_some_and(|g| g.country.is_some())
    }

    fn os(&self) -> impl Iterator<Item = &'r str> {
        let present = self.request.device.as_deref().is_some_and(|d| d.os.is_some());
        present.then_some(self.facts.os.as_str()).into_iter()
    }

    fn domain(&self) -> impl Iterator<Item = &'r str> {
        self.facts.has_site_domain.then_some(self.facts.site_domain.as_str()).into_iter()
    }

    fn categories(&self) -> impl Iterator<Item = &'r str> {
        self.categories.iter().map(|s| s.as_str())
    }

    fn segments(&self) -> impl Iterator<Item = &'r str> + use<'r, 'a> {
        let data = if self.facts.personal {
            self.request.user.as_deref().and_then(|u| u.data.as_deref()).unwrap_or(&[])
        } else {
            &[]
        };
        data.iter()
            .flat_map(|d| d.segment.as_deref().unwrap_or(&[]).iter())
            .filter_map(|s| s.id.as_ref().map(|s| s.as_str()))
    }
}
