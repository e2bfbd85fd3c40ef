//! Tables as CSV (RFC 4180 through the csv crate: a name holding a comma, quote or line break is
//! quoted, so columns never shift).

use crate::error::{Error, Result};

/// `header` and `rows` as CSV bytes.
pub fn csv<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> Result<Vec<u8>> {
    let err = |e: csv::Error| Error::invalid(format!("cannot write CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r.as_ref()).map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| Error::invalid(format!("cannot write CSV: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_what_would_shift_columns() {
        let rows = vec![
            vec!["a,b.png".to_string(), "1".into()],
            vec!["x\ny\"q".into(), "2".into()],
        ];
        let text = String::from_utf8(super::csv(&["name", "v"], &rows).unwrap()).unwrap();
        assert_eq!(text, "name,v\n\"a,b.png\",1\n\"x\ny\"\"q\",2\n");
    }
}
