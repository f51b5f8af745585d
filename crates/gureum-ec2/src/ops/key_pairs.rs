//! Key pairs: `CreateKeyPair`, `ImportKeyPair`, `DescribeKeyPairs`, `DeleteKeyPair`.

use base64::Engine;
use gureum_types::model::{Filter, KeyPair, TagSpecification};
use gureum_types::{ApiError, ErrorCode};

use crate::action::one_of;
use crate::ops::{Op, Resource};
use crate::params::Params;
use crate::render::tag_set;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateKeyPair {
        key_name: String,
        /// `rsa` (default) or `ed25519`.
        key_type: String,
        /// `pem` (default) or `ppk`.
        key_format: String,
        tag_specifications: Vec<TagSpecification>,
    },
    ImportKeyPair {
        key_name: String,
        /// The public key file's bytes (the transport's base64 already removed).
        public_key_material: Vec<u8>,
        tag_specifications: Vec<TagSpecification>,
    },
    DescribeKeyPairs {
        key_names: Vec<String>,
        key_pair_ids: Vec<String>,
        filters: Vec<Filter>,
        include_public_key: bool,
    },
    /// Exactly one of the two is given; the core checks which one matches.
    DeleteKeyPair {
        key_name: Option<String>,
        key_pair_id: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub enum Response {
    CreateKeyPair {
        key: KeyPair,
        key_material: String,
    },
    ImportKeyPair(KeyPair),
    DescribeKeyPairs {
        keys: Vec<KeyPair>,
        include_public_key: bool,
    },
    DeleteKeyPair {
        key_pair_id: Option<String>,
    },
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("CreateKeyPair", parse_create_key_pair),
        Op::write("ImportKeyPair", parse_import_key_pair),
        Op::read("DescribeKeyPairs", |p| {
            Ok(Action::DescribeKeyPairs {
                key_names: p.take_list("KeyName")?,
                key_pair_ids: p.take_list("KeyPairId")?,
                filters: p.take_filters()?,
                include_public_key: p.take_bool("IncludePublicKey")?.unwrap_or(false),
            })
        }),
        Op::write("DeleteKeyPair", parse_delete_key_pair),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::CreateKeyPair { .. } => "CreateKeyPair",
            Action::ImportKeyPair { .. } => "ImportKeyPair",
            Action::DescribeKeyPairs { .. } => "DescribeKeyPairs",
            Action::DeleteKeyPair { .. } => "DeleteKeyPair",
        }
    }
}

fn parse_create_key_pair(p: &mut Params) -> Result<Action, ApiError> {
    let key_name = p.required("KeyName")?;
    let key_type = one_of(
        "KeyType",
        p.take("KeyType").unwrap_or_else(|| "rsa".into()),
        &["rsa", "ed25519"],
    )?;
    let key_format = one_of(
        "KeyFormat",
        p.take("KeyFormat").unwrap_or_else(|| "pem".into()),
        &["pem", "ppk"],
    )?;
    Ok(Action::CreateKeyPair {
        key_name,
        key_type,
        key_format,
        tag_specifications: p.take_tag_specifications()?,
    })
}

fn parse_import_key_pair(p: &mut Params) -> Result<Action, ApiError> {
    let key_name = p.required("KeyName")?;
    let material = p.required("PublicKeyMaterial")?;
    let public_key_material = base64::engine::general_purpose::STANDARD
        .decode(material.trim())
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Value for parameter PublicKeyMaterial is invalid. Invalid base64 encoding",
            )
        })?;
    Ok(Action::ImportKeyPair {
        key_name,
        public_key_material,
        tag_specifications: p.take_tag_specifications()?,
    })
}

fn parse_delete_key_pair(p: &mut Params) -> Result<Action, ApiError> {
    let key_name = p.take("KeyName").filter(|s| !s.is_empty());
    let key_pair_id = p.take("KeyPairId").filter(|s| !s.is_empty());
    if key_name.is_none() && key_pair_id.is_none() {
        return Err(ApiError::new(
            ErrorCode::MissingParameter,
            "The request must contain the parameter KeyName or KeyPairId",
        ));
    }
    Ok(Action::DeleteKeyPair {
        key_name,
        key_pair_id,
    })
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::CreateKeyPair { key, key_material } => {
                x.leaf("keyName", &key.name)
                    .leaf("keyFingerprint", &key.fingerprint)
                    .leaf("keyMaterial", key_material)
                    .leaf("keyPairId", &key.id);
                tag_set(x, &key.tags);
            }
            Response::ImportKeyPair(key) => {
                x.leaf("keyFingerprint", &key.fingerprint)
                    .leaf("keyName", &key.name)
                    .leaf("keyPairId", &key.id);
                tag_set(x, &key.tags);
            }
            Response::DescribeKeyPairs {
                keys,
                include_public_key,
            } => {
                x.set("keySet", keys, |x, k| {
                    x.leaf("keyPairId", &k.id)
                        .leaf("keyName", &k.name)
                        .leaf("keyFingerprint", &k.fingerprint)
                        .leaf("keyType", &k.key_type);
                    tag_set(x, &k.tags);
                    if *include_public_key {
                        x.leaf("publicKey", &k.public_key);
                    }
                    x.leaf("createTime", &k.create_time);
                });
            }
            Response::DeleteKeyPair { key_pair_id } => {
                x.bool("return", true);
                x.leaf_opt("keyPairId", key_pair_id.as_deref());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::parse_form;
    use gureum_types::model::Tag;

    #[test]
    fn describe_key_pairs_as_the_cli_sends_it() {
        let r = parse_form(
            "Action=DescribeKeyPairs&Version=2016-11-15&KeyName.1=a&KeyName.2=b\
             &Filter.1.Name=key-type&Filter.1.Value.1=rsa&IncludePublicKey=true",
        )
        .unwrap();
        assert!(!r.dry_run);
        let Ok(Action::DescribeKeyPairs {
            key_names,
            filters,
            include_public_key,
            ..
        }) = r.action.try_into()
        else {
            panic!("wrong action")
        };
        assert_eq!(key_names, vec!["a", "b"]);
        assert_eq!(filters[0].name, "key-type");
        assert!(include_public_key);
    }

    #[test]
    fn create_key_pair_validates_enums_and_required_names() {
        assert_eq!(
            parse_form("Action=CreateKeyPair").unwrap_err().code,
            ErrorCode::MissingParameter
        );
        assert_eq!(
            parse_form("Action=CreateKeyPair&KeyName=k&KeyType=dsa")
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValue
        );
        let r = parse_form("Action=CreateKeyPair&KeyName=k&DryRun=true").unwrap();
        assert!(r.dry_run);
        assert!(r.action.is_mutating());
    }

    #[test]
    fn import_key_pair_decodes_base64() {
        let r = parse_form("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=c3NoLXJzYQ%3D%3D")
            .unwrap();
        let Ok(Action::ImportKeyPair {
            public_key_material,
            ..
        }) = r.action.try_into()
        else {
            panic!()
        };
        assert_eq!(public_key_material, b"ssh-rsa");
        assert_eq!(
            parse_form("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=!!")
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterValue
        );
    }

    #[test]
    fn golden_delete_key_pair() {
        let doc = crate::Response::from(Response::DeleteKeyPair {
            key_pair_id: Some("key-0123456789abcdef0".into()),
        })
        .render("DeleteKeyPair", "req-1");
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <DeleteKeyPairResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>req-1</requestId><return>true</return>\
             <keyPairId>key-0123456789abcdef0</keyPairId></DeleteKeyPairResponse>"
        );
    }

    #[test]
    fn golden_describe_key_pairs() {
        let key = KeyPair {
            id: "key-0123456789abcdef0".into(),
            name: "demo".into(),
            fingerprint: "aa:bb".into(),
            key_type: "rsa".into(),
            public_key: "ssh-rsa AAAA demo".into(),
            create_time: "2026-11-26T06:00:00.000Z".into(),
            tags: vec![Tag {
                key: "env".into(),
                value: "a&b".into(),
            }],
        };
        let doc = crate::Response::from(Response::DescribeKeyPairs {
            keys: vec![key],
            include_public_key: false,
        })
        .render("DescribeKeyPairs", "r");
        assert!(doc.contains(
            "<keySet><item><keyPairId>key-0123456789abcdef0</keyPairId><keyName>demo</keyName>\
             <keyFingerprint>aa:bb</keyFingerprint><keyType>rsa</keyType>\
             <tagSet><item><key>env</key><value>a&amp;b</value></item></tagSet>\
             <createTime>2026-11-26T06:00:00.000Z</createTime></item></keySet>"
        ));
        assert!(!doc.contains("publicKey"));
    }
}
