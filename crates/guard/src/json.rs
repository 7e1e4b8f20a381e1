//! A small JSON writer (objects, arrays, strings, numbers) for the status document and the
//! webhook payloads. Non-finite numbers are written as `null`.

use std::fmt::Write as _;

/// Builds one JSON text; the caller opens and closes containers in order.
#[derive(Debug, Default)]
pub struct Json {
    out: String,
    /// Per open container: whether it has a member yet.
    stack: Vec<bool>,
    /// A key was written and its value comes next.
    after_key: bool,
}

impl Json {
    pub fn new() -> Json {
        Json::default()
    }

    fn sep(&mut self) {
        if let Some(has) = self.stack.last_mut() {
            if *has {
                self.out.push(',');
            }
            *has = true;
        }
    }

    fn key(&mut self, k: &str) -> &mut Self {
        self.sep();
        quote(&mut self.out, k);
        self.out.push(':');
        self.after_key = true;
        self
    }

    pub fn begin_object(&mut self) -> &mut Self {
        self.value_sep();
        self.out.push('{');
        self.stack.push(false);
        self
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.value_sep();
        self.out.push('[');
        self.stack.push(false);
        self
    }

    pub fn end_object(&mut self) -> &mut Self {
        self.stack.pop();
        self.out.push('}');
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.stack.pop();
        self.out.push(']');
        self
    }

    fn value_sep(&mut self) {
        if self.after_key {
            self.after_key = false;
        } else {
            self.sep();
        }
    }

    /// Starts member `k` of the enclosing object; the next call writes its value.
    pub fn field(&mut self, k: &str) -> &mut Self {
        self.key(k)
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.value_sep();
        quote(&mut self.out, v);
        self
    }

    pub fn num(&mut self, v: f64) -> &mut Self {
        self.value_sep();
        if !v.is_finite() {
            self.out.push_str("null");
        } else if v == v.trunc() && v.abs() < 1e15 {
            let _ = write!(self.out, "{}", v as i64);
        } else {
            let _ = write!(self.out, "{v}");
        }
        self
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        self.value_sep();
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.value_sep();
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.value_sep();
        self.out.push_str("null");
        self
    }

    /// `"k": "v"` in the enclosing object.
    pub fn kv_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.field(k).str(v)
    }

    pub fn kv_num(&mut self, k: &str, v: f64) -> &mut Self {
        self.field(k).num(v)
    }

    pub fn kv_int(&mut self, k: &str, v: i64) -> &mut Self {
        self.field(k).int(v)
    }

    pub fn kv_opt(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.field(k).num(v),
            None => self.field(k).null(),
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_containers_and_escapes() {
        let mut j = Json::new();
        j.begin_object();
        j.kv_str("a", "x\"y\n\u{1}").kv_num("b", 1.5).kv_num("c", f64::NAN).kv_int("d", -3);
        j.field("e").begin_array().num(1.0).num(2.0).begin_object().kv_opt("z", None).end_object().end_array();
        j.field("f").begin_object().end_object();
        j.end_object();
        assert_eq!(j.finish(), r#"{"a":"x\"y\n\u0001","b":1.5,"c":null,"d":-3,"e":[1,2,{"z":null}],"f":{}}"#);
    }
}
