//! The plugin's outputs, in the order `info()` declares them: the SendGrid body to post, the
//! mail log row and the caller's reply. Each output's columns live beside its row type.

use sluice_plugin_sdk::OutputInfo;
use sluice_plugin_sdk::schema::Column;

use crate::{mail_log, reply, sendgrid};

/// Every output and its columns.
pub const OUTPUTS: &[(&str, &[Column])] = &[
    (sendgrid::OUTPUT, sendgrid::COLUMNS),
    (mail_log::OUTPUT, mail_log::COLUMNS),
    (reply::OUTPUT, reply::COLUMNS),
];

/// The outputs this plugin declares in `info()`.
pub fn declared() -> Vec<OutputInfo> {
    OUTPUTS.iter().map(|&(name, columns)| OutputInfo::new(name, columns)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_is_declared_with_its_columns() {
        let outputs: Vec<(String, usize)> =
            declared().into_iter().map(|output| (output.name, output.columns.len())).collect();
        assert_eq!(
            outputs,
            [("sendgrid_mail".to_owned(), 7), ("mail_log".to_owned(), 4), ("reply".to_owned(), 1)]
        );
    }
}
