//! The one conversion of engine errors: a JavaScript `Error` whose `code` is the errno name
//! (`EADDRINUSE`, `EAGAIN`, …) and whose message names what went wrong. Every error the
//! binding raises, thrown or rejected, goes through [`to_js`], so the JS layer never has to
//! wrap or parse one.

use napi::bindgen_prelude::*;
use zeropipe_engine as engine;

/// Builds the JS error for `e` (on the JS thread: `env` is the current one).
pub(crate) fn to_js(env: &Env, e: engine::Error) -> Error {
    let js = napi::JsError::from(Error::new(e.code.as_str(), e.message));
    // An Error made from a JS value rejects and throws that very value.
    Error::from(js.into_unknown(*env))
}

/// `EINVAL` for a value the JS layer should never have passed (a malformed batch, a wrong
/// kind of array): the binding checks what JS hands it as untrusted input.
pub(crate) fn malformed(what: &str) -> engine::Error {
    engine::Error::new(engine::Code::Inval, format!("malformed {what}"))
}

/// Converts an engine result, on the JS thread.
pub(crate) trait OrJs<T> {
    fn or_js(self, env: &Env) -> Result<T>;
}

impl<T> OrJs<T> for std::result::Result<T, engine::Error> {
    fn or_js(self, env: &Env) -> Result<T> {
        self.map_err(|e| to_js(env, e))
    }
}
