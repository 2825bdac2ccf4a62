//! The order, as clients send it, as the worker receives it and as it is stored.
//!
//! Money is never a float: a price is read from the JSON text itself (`serde_json`'s `RawValue`) and kept
//! as integer cents, so `19.99` is exactly 1999 cents and a total is an exact integer sum.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;
use thiserror::Error;

/// At most this many items per order (a shape limit checked by the API).
pub const MAX_ITEMS: usize = 100;
/// At most this many bytes in a customer name or a SKU.
pub const MAX_TEXT_BYTES: usize = 256;
/// Prices are below 10^13 (10^15 cents): quantity × price then always fits in i64 for sane quantities,
/// and is checked anyway.
pub const MAX_CENTS: i64 = 999_999_999_999_999;

/// An exact amount of money in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money {
    cents: i64,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("`{0}` has more than 2 decimal places")]
    TooPrecise(String),
    #[error("`{0}` is too large (at most 9999999999999.99 in absolute value)")]
    TooLarge(String),
}

impl Money {
    pub const ZERO: Money = Money { cents: 0 };

    pub fn from_cents(cents: i64) -> Self {
        Money { cents }
    }

    pub fn cents(self) -> i64 {
        self.cents
    }

    pub fn is_negative(self) -> bool {
        self.cents < 0
    }

    /// Parses a decimal number (`19.99`, `-5`, `1.5e1`, `0.10`, DynamoDB's `N` texts) exactly.
    /// More than 2 significant decimal places, or a magnitude of 10^13 or more, is an error, never rounded.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let not_a_number = || MoneyError::NotANumber(text.to_string());
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
            return Err(not_a_number());
        }
        // The exponent saturates: anything beyond ±10^6 is far outside the range either way.
        let exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                let (neg, digits) = match e.as_bytes().first() {
                    Some(b'-') => (true, &e[1..]),
                    Some(b'+') => (false, &e[1..]),
                    _ => (false, e),
                };
                if digits.is_empty() || !all_digits(digits) {
                    return Err(not_a_number());
                }
                let digits = digits.trim_start_matches('0');
                let magnitude: i64 = if digits.len() > 7 { 10_000_000 } else { digits.parse().map_err(|_| not_a_number())? };
                if neg {
                    -magnitude
                } else {
                    magnitude
                }
            }
        };
        // value = digits × 10^scale cents, where digits has no leading or trailing zeros.
        let mut digits = format!("{int_part}{frac_part}");
        let mut scale = exponent - frac_part.len() as i64 + 2;
        let trimmed = digits.trim_start_matches('0').len();
        digits.drain(..digits.len() - trimmed);
        while digits.ends_with('0') {
            digits.pop();
            scale += 1;
        }
        if digits.is_empty() {
            return Ok(Money::ZERO);
        }
        if scale < 0 {
            return Err(MoneyError::TooPrecise(text.to_string()));
        }
        if digits.len() as i64 + scale > 15 {
            return Err(MoneyError::TooLarge(text.to_string()));
        }
        let base: i64 = digits.parse().map_err(|_| not_a_number())?;
        let cents = (0..scale).try_fold(base, |acc, _| acc.checked_mul(10)).ok_or_else(|| MoneyError::TooLarge(text.to_string()))?;
        Ok(Money { cents: if negative { -cents } else { cents } })
    }

    /// Sum of quantity × self, `None` on overflow.
    pub fn times(self, quantity: i64) -> Option<Money> {
        self.cents.checked_mul(quantity).map(Money::from_cents)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.cents.checked_add(other.cents).map(Money::from_cents)
    }
}

/// The shortest exact decimal: `19.99`, `19.9`, `20`, `-0.05`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        let (units, cents) = (abs / 100, abs % 100);
        match cents {
            0 => write!(f, "{sign}{units}"),
            c if c % 10 == 0 => write!(f, "{sign}{units}.{}", c / 10),
            c => write!(f, "{sign}{units}.{c:02}"),
        }
    }
}

/// Written as a JSON number with its exact decimal text.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// Read from a JSON number's text (only `serde_json::from_str`/`from_slice` can do that; a string is refused).
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(deserializer)?;
        let text = raw.get().trim();
        if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Err(D::Error::custom(format!("invalid type: {}, expected a number", json_kind(text))));
        }
        Money::parse(text).map_err(D::Error::custom)
    }
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'"') => "string",
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "value",
    }
}

/// One line of an order. Quantities and prices are checked by the worker (> 0, >= 0), not here: a client
/// may send `-1` and get a `REJECTED` order with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub sku: String,
    pub quantity: i64,
    pub price: Money,
}

/// The body of `POST /pedidos` and `PUT /pedidos/{id}`. Unknown fields are rejected (a misspelt
/// `quantitiy` is a 400, not a silently dropped field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub customer: String,
    pub items: Vec<Item>,
}

/// Why a body is not an order; the message is meant for the client.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ShapeError(pub String);

impl OrderRequest {
    /// Parses and checks the shape and the size limits (not the business rules: that is the worker's job).
    pub fn parse(body: &str) -> Result<Self, ShapeError> {
        let order: OrderRequest = parse_json(body)?;
        if order.items.len() > MAX_ITEMS {
            return Err(ShapeError(format!("items: at most {MAX_ITEMS} items per order (got {})", order.items.len())));
        }
        if order.customer.len() > MAX_TEXT_BYTES {
            return Err(ShapeError(format!("customer: at most {MAX_TEXT_BYTES} bytes")));
        }
        if let Some(i) = order.items.iter().position(|item| item.sku.len() > MAX_TEXT_BYTES) {
            return Err(ShapeError(format!("items[{i}].sku: at most {MAX_TEXT_BYTES} bytes")));
        }
        Ok(order)
    }
}

/// What the API hands the worker (env `ORDER_JSON`): the order as of one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSnapshot {
    pub id: String,
    /// Changes on every POST/PUT; the worker writes its verdict only while the order is still at this revision.
    pub revision: String,
    pub customer: String,
    pub items: Vec<Item>,
}

impl OrderSnapshot {
    pub fn parse(json: &str) -> Result<Self, ShapeError> {
        parse_json(json)
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// Strict JSON parsing with the path of the offending field in the message (`items[1].quantity: ...`).
fn parse_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ShapeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ShapeError(inner.to_string())
        } else {
            ShapeError(format!("{path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| ShapeError(e.to_string()))?;
    // serde's derived structs also accept arrays (`["ana", []]`): an order and its items must be objects.
    // The typed parse passed, so every number is in range and this second parse cannot fail on one.
    let tree: serde_json::Value = serde_json::from_str(text).map_err(|e| ShapeError(e.to_string()))?;
    let Some(order) = tree.as_object() else {
        return Err(ShapeError("expected a JSON object".into()));
    };
    if let Some(items) = order.get("items").and_then(|v| v.as_array()) {
        if let Some(i) = items.iter().position(|item| !item.is_object()) {
            return Err(ShapeError(format!("items[{i}]: expected a JSON object")));
        }
    }
    Ok(value)
}

/// Which request started the worker: its success status depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        match s.trim().to_ascii_lowercase().as_str() {
            "create" | "post" => Some(Op::Create),
            "update" | "put" => Some(Op::Update),
            _ => None,
        }
    }

    /// The status of an order this operation accepted.
    pub fn accepted(self) -> Status {
        match self {
            Op::Create => Status::Created,
            Op::Update => Status::Updated,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Stored, its worker task started (or about to be).
    Pending,
    /// The worker accepted a new order.
    Created,
    /// The worker accepted an update.
    Updated,
    /// The worker found the order invalid (`reasons` says why).
    Rejected,
    /// The worker task could not be started (`failure` says why).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Created => "CREATED",
            Status::Updated => "UPDATED",
            Status::Rejected => "REJECTED",
            Status::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Pending, Status::Created, Status::Updated, Status::Rejected, Status::Failed].into_iter().find(|st| st.as_str() == s)
    }
}

/// An order as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: String,
    pub customer: String,
    pub items: Vec<Item>,
    pub status: Status,
    pub op: Op,
    /// Set by the worker when it accepts the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    /// Set by the worker when it rejects the order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    /// Why the worker task could not be started (status `FAILED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(skip)]
    pub revision: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(s: &str) -> Result<i64, MoneyError> {
        Money::parse(s).map(Money::cents)
    }

    #[test]
    fn money_parses_exactly() {
        assert_eq!(cents("19.99"), Ok(1999));
        assert_eq!(cents("0.1"), Ok(10));
        assert_eq!(cents("0.10"), Ok(10));
        assert_eq!(cents("0.30000"), Ok(30));
        assert_eq!(cents("20"), Ok(2000));
        assert_eq!(cents("-5"), Ok(-500));
        assert_eq!(cents("-0"), Ok(0));
        assert_eq!(cents("0"), Ok(0));
        assert_eq!(cents("1.5e1"), Ok(1500));
        assert_eq!(cents("1999E-2"), Ok(1999));
        assert_eq!(cents("1E+2"), Ok(10000));
        assert_eq!(cents("+3.5"), Ok(350));
        assert_eq!(cents("0e999999999999999999"), Ok(0));
        assert_eq!(cents("9999999999999.99"), Ok(MAX_CENTS));
        assert_eq!(cents("007.50"), Ok(750));
    }

    #[test]
    fn money_refuses_what_it_cannot_hold_exactly() {
        assert!(matches!(Money::parse("19.999"), Err(MoneyError::TooPrecise(_))));
        assert!(matches!(Money::parse("0.001"), Err(MoneyError::TooPrecise(_))));
        assert!(matches!(Money::parse("1e-3"), Err(MoneyError::TooPrecise(_))));
        assert!(matches!(Money::parse("10000000000000"), Err(MoneyError::TooLarge(_))));
        assert!(matches!(Money::parse("1e400"), Err(MoneyError::TooLarge(_))));
        assert!(matches!(Money::parse("1e99999999999999999999"), Err(MoneyError::TooLarge(_))));
        for bad in ["", "-", ".", "abc", "1.2.3", "1e", "1e+", "--1", "1,5", "0x10", "NaN", "inf"] {
            assert!(matches!(Money::parse(bad), Err(MoneyError::NotANumber(_))), "{bad}");
        }
    }

    #[test]
    fn money_displays_the_shortest_exact_decimal() {
        for (c, s) in [(1999, "19.99"), (1990, "19.9"), (2000, "20"), (-5, "-0.05"), (0, "0"), (-150, "-1.5"), (7, "0.07")] {
            assert_eq!(Money::from_cents(c).to_string(), s);
            assert_eq!(cents(s), Ok(c));
        }
        assert_eq!(Money::from_cents(i64::MIN).to_string(), "-92233720368547758.08");
    }

    #[test]
    fn no_float_drift_in_sums() {
        // 0.1 + 0.2 in f64 is 0.30000000000000004.
        let total = Money::parse("0.1").and_then(|a| Money::parse("0.2").map(|b| a.checked_add(b)));
        assert_eq!(total, Ok(Some(Money::from_cents(30))));
        assert_eq!(Money::parse("19.99").map(|m| m.times(3)), Ok(Some(Money::from_cents(5997))));
        assert_eq!(Money::from_cents(i64::MAX).times(2), None);
    }

    #[test]
    fn money_round_trips_through_json_as_a_number() {
        let item = Item { sku: "A".into(), quantity: 2, price: Money::from_cents(1999) };
        let json = serde_json::to_string(&item).unwrap();
        assert_eq!(json, r#"{"sku":"A","quantity":2,"price":19.99}"#);
        let back: Item = serde_json::from_str(&json).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn order_request_parses_the_happy_shape() {
        let o = OrderRequest::parse(r#" {"customer":"ana","items":[{"sku":"X-1","quantity":3,"price":0.1}]} "#).unwrap();
        assert_eq!(o.customer, "ana");
        assert_eq!(o.items, vec![Item { sku: "X-1".into(), quantity: 3, price: Money::from_cents(10) }]);
        // Business rules are the worker's: these are well-formed.
        assert!(OrderRequest::parse(r#"{"customer":"","items":[]}"#).is_ok());
        assert!(OrderRequest::parse(r#"{"customer":"a","items":[{"sku":"s","quantity":-1,"price":-2.5}]}"#).is_ok());
    }

    #[test]
    fn order_request_errors_name_the_field() {
        let err = |body: &str| OrderRequest::parse(body).unwrap_err().0;
        assert!(err(r#"{"items":[]}"#).contains("missing field `customer`"), "{}", err(r#"{"items":[]}"#));
        assert!(err(r#"{"customer":"a"}"#).contains("missing field `items`"));
        let e = err(r#"{"customer":"a","items":[{"sku":"s","quantity":"2","price":1}]}"#);
        assert!(e.starts_with("items[0].quantity: invalid type: string"), "{e}");
        let e = err(r#"{"customer":"a","items":[{"sku":"s","quantity":1.5,"price":1}]}"#);
        assert!(e.starts_with("items[0].quantity: invalid type: floating point"), "{e}");
        let e = err(r#"{"customer":"a","items":[{"sku":"s","quantity":1,"price":"1.00"}]}"#);
        assert!(e.starts_with("items[0].price: invalid type: string"), "{e}");
        let e = err(r#"{"customer":"a","items":[{"sku":"s","quantity":1,"price":1.001}]}"#);
        assert!(e.starts_with("items[0].price: `1.001` has more than 2 decimal places"), "{e}");
        let e = err(r#"{"customer":"a","items":[{"sku":"s","quantity":1,"price":1,"colour":"red"}]}"#);
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = err(r#"{"customer":"a","items":[],"extra":1}"#);
        assert!(e.contains("unknown field `extra`"), "{e}");
        assert!(err(r#"{"customer":7,"items":[]}"#).starts_with("customer: invalid type: integer"));
        assert!(err(r#"{"customer":"a","items":{}}"#).starts_with("items: invalid type: map"));
        assert!(err("[]").contains("expected struct OrderRequest"), "{}", err("[]"));
        assert_eq!(err(r#"["ana", []]"#), "expected a JSON object");
        assert_eq!(err(r#"{"customer":"a","items":[["s",1,1]]}"#), "items[0]: expected a JSON object");
        assert!(err("null").contains("invalid type: null"));
        assert!(err(r#"{"customer":"a","items":[]} trailing"#).contains("trailing characters"));
        assert!(err(r#"{"customer":"a","#).contains("EOF"));
        assert!(err("").contains("EOF"));
    }

    #[test]
    fn order_request_size_limits() {
        let item = r#"{"sku":"s","quantity":1,"price":1}"#;
        let items = vec![item; MAX_ITEMS + 1].join(",");
        let e = OrderRequest::parse(&format!(r#"{{"customer":"a","items":[{items}]}}"#)).unwrap_err().0;
        assert!(e.contains("at most 100 items"), "{e}");
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        assert!(OrderRequest::parse(&format!(r#"{{"customer":"{long}","items":[]}}"#)).is_err());
        assert!(OrderRequest::parse(&format!(r#"{{"customer":"a","items":[{{"sku":"{long}","quantity":1,"price":1}}]}}"#)).is_err());
    }

    #[test]
    fn snapshot_round_trips() {
        let s = OrderSnapshot {
            id: "i".into(),
            revision: "r".into(),
            customer: "c".into(),
            items: vec![Item { sku: "a".into(), quantity: 1, price: Money::from_cents(5) }],
        };
        assert_eq!(OrderSnapshot::parse(&s.to_json().unwrap()), Ok(s));
    }

    #[test]
    fn op_and_status_names() {
        assert_eq!(Op::parse("create"), Some(Op::Create));
        assert_eq!(Op::parse("UPDATE"), Some(Op::Update));
        assert_eq!(Op::parse("delete"), None);
        assert_eq!(Op::Update.accepted(), Status::Updated);
        for s in [Status::Pending, Status::Created, Status::Updated, Status::Rejected, Status::Failed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
    }
}
