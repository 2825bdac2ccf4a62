//! Route selection as API Gateway HTTP APIs do it: a route key is `METHOD /path` (`ANY` for every method,
//! `{name}` for one segment, a last `{name+}` for the rest of the path) or `$default`. Among the routes that
//! match, the most specific wins: segment by segment a literal beats a `{param}`, which beats a greedy
//! `{proxy+}`; then a named method beats `ANY`; `$default` only when nothing else matches.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// One route of an API, parsed from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    /// As declared: `GET /pedidos/{id}`, `$default`.
    pub key: String,
    /// `None` for `ANY` and `$default`.
    method: Option<String>,
    /// `None` for `$default`.
    segments: Option<Vec<Segment>>,
}

/// What a request matched: the route key and the path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route_key: String,
    pub path_parameters: BTreeMap<String, String>,
}

impl RouteKey {
    /// Parses a route key; `Err` says what is wrong with it.
    pub fn parse(key: &str) -> Result<RouteKey, String> {
        if key == "$default" {
            return Ok(RouteKey { key: key.into(), method: None, segments: None });
        }
        let (method, path) = key.split_once(' ').ok_or_else(|| format!("route key `{key}` is not `METHOD /path`"))?;
        if !path.starts_with('/') {
            return Err(format!("route key `{key}`: the path must start with /"));
        }
        let method = match method.to_ascii_uppercase().as_str() {
            "ANY" => None,
            m => Some(m.to_string()),
        };
        let parts: Vec<&str> = if path == "/" { Vec::new() } else { path[1..].split('/').collect() };
        let mut segments = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(name) if i + 1 == parts.len() => Segment::Greedy(name.to_string()),
                    Some(_) => return Err(format!("route key `{key}`: a greedy {{name+}} must be the last segment")),
                    None => Segment::Param(name.to_string()),
                },
                None => Segment::Literal(part.to_string()),
            };
            segments.push(segment);
        }
        Ok(RouteKey { key: key.into(), method, segments: Some(segments) })
    }

    /// The path parameters when this route matches, with its specificity (higher is more specific).
    fn matches(&self, method: &str, path: &str) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
        let segments = self.segments.as_ref()?;
        if self.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(method)) {
            return None;
        }
        let parts: Vec<&str> = if path == "/" || path.is_empty() { Vec::new() } else { path.trim_start_matches('/').split('/').collect() };
        let mut params = BTreeMap::new();
        // Per segment: 3 literal, 2 param, 1 greedy; a longer match of literals ranks first.
        let mut rank = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                    rank.push(3);
                }
                Segment::Param(name) => {
                    let part = parts.get(i).filter(|p| !p.is_empty())?;
                    params.insert(name.clone(), percent_decode(part));
                    rank.push(2);
                }
                Segment::Greedy(name) => {
                    // `{proxy+}` needs at least one segment: `/` alone does not match `/{proxy+}`.
                    let rest = parts.get(i..).filter(|r| !r.is_empty() && !r[0].is_empty())?;
                    params.insert(name.clone(), percent_decode(&rest.join("/")));
                    rank.push(1);
                    rank.push(u8::from(self.method.is_some()));
                    return Some((rank, params));
                }
            }
        }
        if parts.len() != segments.len() {
            return None;
        }
        rank.push(u8::from(self.method.is_some()) + 1);
        Some((rank, params))
    }
}

/// The routes of one API.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<RouteKey>,
}

impl Router {
    pub fn new(keys: &[&str]) -> Result<Router, String> {
        Ok(Router { routes: keys.iter().map(|k| RouteKey::parse(k)).collect::<Result<_, _>>()? })
    }

    pub fn add(&mut self, key: &str) -> Result<(), String> {
        self.routes.push(RouteKey::parse(key)?);
        Ok(())
    }

    /// The route a request goes to, or `None` (API Gateway answers 404).
    pub fn select(&self, method: &str, path: &str) -> Option<Matched> {
        let best =
            self.routes.iter().filter_map(|r| r.matches(method, path).map(|(rank, params)| (rank, r, params))).max_by(|a, b| a.0.cmp(&b.0));
        match best {
            Some((_, r, params)) => Some(Matched { route_key: r.key.clone(), path_parameters: params }),
            None => self
                .routes
                .iter()
                .find(|r| r.segments.is_none())
                .map(|r| Matched { route_key: r.key.clone(), path_parameters: BTreeMap::new() }),
        }
    }
}

/// `%XX` decoded (API Gateway passes path parameters decoded); invalid escapes are left as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(&[
            "GET /pedidos",
            "POST /pedidos",
            "GET /pedidos/{id}",
            "GET /pedidos/special",
            "ANY /pedidos/{id}",
            "GET /files/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ])
        .unwrap()
    }

    fn select(r: &Router, m: &str, p: &str) -> (String, Vec<(String, String)>) {
        let m = r.select(m, p).unwrap();
        (m.route_key, m.path_parameters.into_iter().collect())
    }

    #[test]
    fn exact_beats_param_beats_greedy_beats_default() {
        let r = router();
        assert_eq!(select(&r, "GET", "/pedidos").0, "GET /pedidos");
        assert_eq!(select(&r, "GET", "/pedidos/special").0, "GET /pedidos/special");
        assert_eq!(select(&r, "GET", "/pedidos/42"), ("GET /pedidos/{id}".into(), vec![("id".into(), "42".into())]));
        assert_eq!(select(&r, "DELETE", "/pedidos/42").0, "ANY /pedidos/{id}", "ANY takes the methods no route names");
        assert_eq!(select(&r, "GET", "/files/a/b.txt"), ("GET /files/{proxy+}".into(), vec![("proxy".into(), "a/b.txt".into())]));
        assert_eq!(select(&r, "PATCH", "/pedidos"), ("ANY /{proxy+}".into(), vec![("proxy".into(), "pedidos".into())]));
        assert_eq!(select(&r, "GET", "/").0, "$default", "a greedy variable needs one segment at least");
    }

    #[test]
    fn no_route_and_no_default_is_none() {
        let r = Router::new(&["GET /pedidos", "GET /pedidos/{id}"]).unwrap();
        assert!(r.select("POST", "/pedidos").is_none());
        assert!(r.select("GET", "/pedidos/").is_none(), "an empty segment is no {{id}}");
        assert!(r.select("GET", "/pedidos/1/2").is_none());
        assert!(r.select("GET", "/other").is_none());
        assert_eq!(r.select("get", "/pedidos").unwrap().route_key, "GET /pedidos", "methods compare case-insensitively");
    }

    #[test]
    fn parameters_are_decoded_and_bad_keys_refused() {
        let r = Router::new(&["GET /u/{name}"]).unwrap();
        assert_eq!(r.select("GET", "/u/a%20b").unwrap().path_parameters["name"], "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert!(RouteKey::parse("GET /{p+}/x").is_err());
        assert!(RouteKey::parse("GET pedidos").is_err());
        assert!(RouteKey::parse("/pedidos").is_err());
    }

    #[test]
    fn root_route() {
        let r = Router::new(&["GET /", "GET /{p}"]).unwrap();
        assert_eq!(r.select("GET", "/").unwrap().route_key, "GET /");
        assert_eq!(r.select("GET", "/x").unwrap().route_key, "GET /{p}");
    }
}
