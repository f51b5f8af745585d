//! Exact money and usage quantities.
//!
//! Owned here: the fixed-point types every figure is kept in, and the only place where
//! rounding happens (rendering). Nothing is a float.
//!
//! Why these units: per-second usage rated at hourly or GB-month prices divides by 3,600,000
//! (ms per hour) or by the milliseconds of a 28-, 29-, 30- or 31-day month. [`DENOM`] is a
//! common multiple of all of them, so every quantity of usage is an integer number of
//! `1/DENOM` units, and a [`Price`] (an integer number of 1e-10 USD per unit) times a
//! [`Quantity`] is an exact integer [`Usd`]. Sums of any number of line items are therefore
//! exact; rounding to what AWS shows (10 decimals in Cost Explorer, cents on a bill) is done
//! once, when a figure is rendered, half away from zero.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

use serde::{Serialize, Serializer};

use crate::calendar::{MS_PER_DAY, MS_PER_HOUR};

/// lcm(ms per hour, ms per day × lcm(28, 29, 30, 31)) = 86,400,000 × 377,580.
pub const DENOM: i128 = 86_400_000 * 377_580;

/// Decimal places a [`Price`] can carry: 1e-10 USD.
pub const PRICE_DECIMALS: u32 = 10;
const PRICE_SCALE: i128 = 10_000_000_000;

/// The largest price accepted (per hour or per GB-month): keeps every sum far from overflow.
pub const MAX_PRICE_USD: i64 = 100_000;

/// A unit price in USD, exact to 1e-10 (AWS publishes at most 8 decimals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(i64);

/// Why a decimal did not parse as a price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("not a decimal number")]
    NotDecimal,
    #[error("more than {PRICE_DECIMALS} decimal places")]
    TooPrecise,
    #[error("negative")]
    Negative,
    #[error("larger than {MAX_PRICE_USD}")]
    TooLarge,
}

impl Price {
    /// A price from its count of 1e-10 USD.
    pub const fn from_tenth_nanos(units: i64) -> Price {
        Price(units)
    }

    pub const fn tenth_nanos(self) -> i64 {
        self.0
    }

    pub const ZERO: Price = Price(0);

    /// Parse a plain decimal such as `0.0116` or `3` (no sign, no exponent).
    pub fn parse(s: &str) -> Result<Price, AmountError> {
        let s = s.trim();
        if s.starts_with('-') {
            return Err(AmountError::Negative);
        }
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(AmountError::NotDecimal);
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > PRICE_DECIMALS as usize {
            return Err(AmountError::TooPrecise);
        }
        let int = int.trim_start_matches('0');
        if int.len() > 6 {
            return Err(AmountError::TooLarge);
        }
        let whole: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| AmountError::NotDecimal)?
        };
        if whole > MAX_PRICE_USD {
            return Err(AmountError::TooLarge);
        }
        let mut units = whole * PRICE_SCALE as i64;
        let mut scale = PRICE_SCALE as i64 / 10;
        for b in frac.bytes() {
            units += i64::from(b - b'0') * scale;
            scale /= 10;
        }
        if units > MAX_PRICE_USD * PRICE_SCALE as i64 {
            return Err(AmountError::TooLarge);
        }
        Ok(Price(units))
    }
}

/// Shortest exact decimal: `0.0116`, `0.08`, `0`.
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(
            i128::from(self.0),
            PRICE_SCALE,
            PRICE_DECIMALS,
            true,
        ))
    }
}

/// An amount of usage (hours or GB-months) in units of `1/DENOM`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i128);

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    /// Units of quantity per millisecond of an hourly-priced resource.
    pub const PER_MS_HOURLY: i128 = DENOM / MS_PER_HOUR as i128;

    /// `n` whole units (hours, GB-months).
    pub const fn whole(n: i64) -> Quantity {
        Quantity(n as i128 * DENOM)
    }

    pub const fn from_raw(raw: i128) -> Quantity {
        Quantity(raw)
    }

    pub const fn raw(self) -> i128 {
        self.0
    }

    /// `ms` of an hourly-priced resource, in hours.
    pub fn hours(ms: i64) -> Quantity {
        Quantity(i128::from(ms) * Self::PER_MS_HOURLY)
    }

    /// Units of quantity per millisecond of `gib` provisioned in a month of `days` days.
    pub fn gb_month_per_ms(gib: u32, days: u32) -> i128 {
        i128::from(gib) * DENOM / (i128::from(days) * i128::from(MS_PER_DAY))
    }

    /// `gib` provisioned for `ms` within a month of `days` days, in GB-months.
    pub fn gb_months(gib: u32, ms: i64, days: u32) -> Quantity {
        Quantity(Self::gb_month_per_ms(gib, days) * i128::from(ms))
    }

    pub fn min(self, other: Quantity) -> Quantity {
        Quantity(self.0.min(other.0))
    }

    pub fn max(self, other: Quantity) -> Quantity {
        Quantity(self.0.max(other.0))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Rounded to `decimals` places (half away from zero) with trailing zeros dropped.
    pub fn to_decimal(self, decimals: u32) -> String {
        render(self.0, DENOM, decimals, true)
    }

    /// Rounded to exactly `decimals` places.
    pub fn to_fixed(self, decimals: u32) -> String {
        render(self.0, DENOM, decimals, false)
    }

    /// For display and tests only: never used in arithmetic.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / DENOM as f64
    }
}

impl Add for Quantity {
    type Output = Quantity;
    fn add(self, o: Quantity) -> Quantity {
        Quantity(self.0 + o.0)
    }
}

impl Sub for Quantity {
    type Output = Quantity;
    fn sub(self, o: Quantity) -> Quantity {
        Quantity(self.0 - o.0)
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, o: Quantity) {
        self.0 += o.0;
    }
}

impl Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::ZERO, Add::add)
    }
}

/// Money in USD, exact: units of `1e-10 / DENOM` USD, the product of a [`Price`] and a
/// [`Quantity`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i128);

const USD_DENOM: i128 = DENOM * PRICE_SCALE;

impl Usd {
    pub const ZERO: Usd = Usd(0);

    /// What `quantity` costs at `price` per unit.
    pub fn charge(price: Price, quantity: Quantity) -> Usd {
        Usd(i128::from(price.0) * quantity.0)
    }

    /// Whole cents, for fixtures and tests.
    pub fn cents(cents: i64) -> Usd {
        Usd(i128::from(cents) * USD_DENOM / 100)
    }

    /// A price of one unit, as money.
    pub fn from_price(price: Price) -> Usd {
        Usd::charge(price, Quantity::whole(1))
    }

    pub const fn raw(self) -> i128 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Rounded to `decimals` places (half away from zero), trailing zeros dropped: what Cost
    /// Explorer prints (`"0.2682364644"`, `"0"`).
    pub fn to_decimal(self, decimals: u32) -> String {
        render(self.0, USD_DENOM, decimals, true)
    }

    /// Rounded to exactly `decimals` places: `"12.30"` on a bill.
    pub fn to_fixed(self, decimals: u32) -> String {
        render(self.0, USD_DENOM, decimals, false)
    }

    /// For display and tests only: never used in arithmetic.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / USD_DENOM as f64
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, o: Usd) -> Usd {
        Usd(self.0 + o.0)
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, o: Usd) -> Usd {
        Usd(self.0 - o.0)
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, o: Usd) {
        self.0 += o.0;
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

/// Serialized as the decimal string Cost Explorer would show (10 places, trimmed).
impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_decimal(10))
    }
}

/// Serialized as a decimal string (10 places, trimmed).
impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_decimal(10))
    }
}

/// Serialized as its exact decimal string.
impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `value / denom` rounded half away from zero to `decimals` places. Splits off the integer
/// part first so that scaling the remainder never overflows.
fn render(value: i128, denom: i128, decimals: u32, trim: bool) -> String {
    let negative = value < 0;
    let magnitude = value.unsigned_abs();
    let denom = denom as u128;
    let scale = 10u128.pow(decimals);
    let mut int = magnitude / denom;
    let rem = magnitude % denom;
    let scaled = rem * scale;
    let mut frac = scaled / denom;
    if (scaled % denom) * 2 >= denom {
        frac += 1;
        if frac == scale {
            frac = 0;
            int += 1;
        }
    }
    let mut out = String::new();
    if negative && (int != 0 || frac != 0) {
        out.push('-');
    }
    out.push_str(&int.to_string());
    if decimals > 0 {
        let mut digits = format!("{frac:0width$}", width = decimals as usize);
        if trim {
            while digits.ends_with('0') {
                digits.pop();
            }
        }
        if !digits.is_empty() {
            out.push('.');
            out.push_str(&digits);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denominator_divides_every_period() {
        assert_eq!(DENOM % i128::from(MS_PER_HOUR), 0);
        for days in 28..=31 {
            assert_eq!(DENOM % (i128::from(days) * i128::from(MS_PER_DAY)), 0);
        }
    }

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(Price::parse("0.0116").unwrap().tenth_nanos(), 116_000_000);
        assert_eq!(Price::parse("0.08").unwrap().to_string(), "0.08");
        assert_eq!(Price::parse("3").unwrap().to_string(), "3");
        assert_eq!(Price::parse(".5").unwrap().to_string(), "0.5");
        assert_eq!(Price::parse("0.0000000001").unwrap().tenth_nanos(), 1);
        assert_eq!(
            Price::parse("0.12345678900").unwrap().to_string(),
            "0.123456789"
        );
        assert_eq!(Price::parse("0.00000000001"), Err(AmountError::TooPrecise));
        assert_eq!(Price::parse("-1"), Err(AmountError::Negative));
        assert_eq!(Price::parse("1e-3"), Err(AmountError::NotDecimal));
        assert_eq!(Price::parse(""), Err(AmountError::NotDecimal));
        assert_eq!(Price::parse("."), Err(AmountError::NotDecimal));
        assert_eq!(Price::parse("100001"), Err(AmountError::TooLarge));
    }

    #[test]
    fn rating_is_exact_and_rounds_once() {
        // One second of t2.micro: 0.0116 / 3600 = 0.00000322222… USD.
        let p = Price::parse("0.0116").unwrap();
        let one_second = Usd::charge(p, Quantity::hours(1_000));
        assert_eq!(one_second.to_decimal(10), "0.0000032222");
        // 3600 separate seconds add up to exactly one hour's price.
        let hour: Usd = (0..3600).map(|_| one_second).sum();
        assert_eq!(hour, Usd::charge(p, Quantity::whole(1)));
        assert_eq!(hour.to_decimal(10), "0.0116");
        assert_eq!(hour.to_fixed(2), "0.01");
        assert_eq!(Usd::ZERO.to_decimal(10), "0");
        assert_eq!(Usd::ZERO.to_fixed(2), "0.00");
        assert_eq!(Usd::cents(995).to_fixed(1), "10.0");
        assert_eq!(Usd::cents(5).to_fixed(1), "0.1");
    }

    #[test]
    fn gb_months_follow_the_month_length() {
        // AWS: in a 31-day month, 31 GB for 24 hours is one GB-month.
        let q = Quantity::gb_months(31, 24 * MS_PER_HOUR, 31);
        assert_eq!(q, Quantity::whole(1));
        let q = Quantity::gb_months(30, 24 * MS_PER_HOUR, 30);
        assert_eq!(q, Quantity::whole(1));
        assert_eq!(Quantity::hours(90 * 60 * 1000).to_decimal(6), "1.5");
    }
}
