//! Text users read, in both of the platform's languages.

use serde::{Deserialize, Serialize};

/// Localised text: zh-CN first, English second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalizedText {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}
