//! Rendering of results as EC2 XML: one [`Response`] variant per action, and the error
//! envelope. Element names follow botocore's EC2 model (`locationName`s), with the
//! `requestId` first as AWS writes it.

use gureum_types::instance_types::InstanceTypeInfo;
use gureum_types::model::{KeyPair, Tag, TagDescription};
use gureum_types::region::{Region, Zone};
use gureum_types::ApiError;

use crate::xml::{Xml, EC2_NS};

/// The result of an action, ready to render.
#[derive(Debug, Clone)]
pub enum Response {
    DescribeRegions(Vec<Region>),
    DescribeAvailabilityZones {
        region: String,
        zones: Vec<Zone>,
    },
    DescribeAccountAttributes(Vec<(String, Vec<String>)>),
    DescribeInstanceTypes {
        types: Vec<&'static InstanceTypeInfo>,
        next_token: Option<String>,
    },
    DescribeInstanceTypeOfferings {
        /// (instance type, location type, location)
        offerings: Vec<(&'static str, String, String)>,
        next_token: Option<String>,
    },
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
    CreateTags,
    DeleteTags,
    DescribeTags {
        tags: Vec<TagDescription>,
        next_token: Option<String>,
    },
}

fn tag_set(x: &mut Xml, tags: &[Tag]) {
    x.set("tagSet", tags, |x, t| {
        x.leaf("key", &t.key).leaf("value", &t.value);
    });
}

fn instance_type(x: &mut Xml, t: &InstanceTypeInfo) {
    x.leaf("instanceType", t.name)
        .bool("currentGeneration", t.current_generation)
        .bool("freeTierEligible", t.free_tier_eligible)
        .values("supportedUsageClasses", t.supported_usage_classes)
        .values("supportedRootDeviceTypes", t.supported_root_device_types)
        .values(
            "supportedVirtualizationTypes",
            t.supported_virtualization_types,
        )
        .bool("bareMetal", t.bare_metal)
        .leaf("hypervisor", t.hypervisor);
    x.open("processorInfo")
        .values("supportedArchitectures", t.architectures)
        .leaf_display("sustainedClockSpeedInGhz", t.sustained_clock_speed_ghz)
        .leaf("manufacturer", t.processor_manufacturer)
        .close("processorInfo");
    x.open("vCpuInfo")
        .leaf_display("defaultVCpus", t.default_vcpus)
        .leaf_display("defaultCores", t.default_cores)
        .leaf_display("defaultThreadsPerCore", t.default_threads_per_core)
        .values("validCores", t.valid_cores)
        .values("validThreadsPerCore", t.valid_threads_per_core)
        .close("vCpuInfo");
    x.open("memoryInfo")
        .leaf_display("sizeInMiB", t.memory_mib)
        .close("memoryInfo");
    x.bool("instanceStorageSupported", false);
    x.open("ebsInfo")
        .leaf("ebsOptimizedSupport", t.ebs_optimized_support)
        .leaf("encryptionSupport", t.ebs_encryption_support)
        .leaf("nvmeSupport", t.ebs_nvme_support)
        .close("ebsInfo");
    x.open("networkInfo")
        .leaf("networkPerformance", t.network_performance)
        .leaf_display("maximumNetworkInterfaces", t.maximum_network_interfaces)
        .leaf_display("maximumNetworkCards", 1)
        .leaf_display("defaultNetworkCardIndex", 0);
    x.open("networkCards")
        .open("item")
        .leaf_display("networkCardIndex", 0)
        .leaf("networkPerformance", t.network_performance)
        .leaf_display("maximumNetworkInterfaces", t.maximum_network_interfaces)
        .close("item")
        .close("networkCards");
    x.leaf_display("ipv4AddressesPerInterface", t.ipv4_addresses_per_interface)
        .leaf_display("ipv6AddressesPerInterface", t.ipv6_addresses_per_interface)
        .bool("ipv6Supported", t.ipv6_supported)
        .leaf("enaSupport", t.ena_support)
        .bool("efaSupported", false)
        .bool("encryptionInTransitSupported", false)
        .bool("enaSrdSupported", false)
        .close("networkInfo");
    x.open("placementGroupInfo")
        .values("supportedStrategies", t.placement_group_strategies)
        .close("placementGroupInfo");
    x.bool("hibernationSupported", t.hibernation_supported)
        .bool(
            "burstablePerformanceSupported",
            t.burstable_performance_supported,
        )
        .bool("dedicatedHostsSupported", t.dedicated_hosts_supported)
        .bool("autoRecoverySupported", t.auto_recovery_supported)
        .values("supportedBootModes", t.supported_boot_modes);
}

impl Response {
    /// The response document for `action`, with `request_id`.
    pub fn render(&self, action: &str, request_id: &str) -> String {
        let root = format!("{action}Response");
        let mut x = Xml::document(&root, EC2_NS);
        x.leaf("requestId", request_id);
        match self {
            Response::DescribeRegions(regions) => {
                x.set("regionInfo", regions, |x, r| {
                    x.leaf("regionName", &r.name)
                        .leaf("regionEndpoint", &r.endpoint())
                        .leaf("optInStatus", "opt-in-not-required");
                });
            }
            Response::DescribeAvailabilityZones { region, zones } => {
                x.set("availabilityZoneInfo", zones, |x, z| {
                    x.leaf("zoneName", &z.name)
                        .leaf("zoneState", "available")
                        .leaf("regionName", region)
                        .leaf("zoneId", &z.id)
                        .leaf("groupName", region)
                        .leaf("networkBorderGroup", region)
                        .leaf("zoneType", "availability-zone")
                        .leaf("optInStatus", "opt-in-not-required")
                        .open("messageSet")
                        .close("messageSet");
                });
            }
            Response::DescribeAccountAttributes(attrs) => {
                x.set("accountAttributeSet", attrs, |x, (name, values)| {
                    x.leaf("attributeName", name)
                        .set("attributeValueSet", values, |x, v| {
                            x.leaf("attributeValue", v);
                        });
                });
            }
            Response::DescribeInstanceTypes { types, next_token } => {
                x.set("instanceTypeSet", types, |x, t| instance_type(x, t));
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::DescribeInstanceTypeOfferings {
                offerings,
                next_token,
            } => {
                x.set("instanceTypeOfferingSet", offerings, |x, (t, lt, l)| {
                    x.leaf("instanceType", t)
                        .leaf("locationType", lt)
                        .leaf("location", l);
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
            Response::CreateKeyPair { key, key_material } => {
                x.leaf("keyName", &key.name)
                    .leaf("keyFingerprint", &key.fingerprint)
                    .leaf("keyMaterial", key_material)
                    .leaf("keyPairId", &key.id);
                tag_set(&mut x, &key.tags);
            }
            Response::ImportKeyPair(key) => {
                x.leaf("keyFingerprint", &key.fingerprint)
                    .leaf("keyName", &key.name)
                    .leaf("keyPairId", &key.id);
                tag_set(&mut x, &key.tags);
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
            Response::CreateTags | Response::DeleteTags => {
                x.bool("return", true);
            }
            Response::DescribeTags { tags, next_token } => {
                x.set("tagSet", tags, |x, t| {
                    x.leaf("resourceId", &t.resource_id)
                        .leaf("resourceType", &t.resource_type)
                        .leaf("key", &t.key)
                        .leaf("value", &t.value);
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
        }
        x.finish(&root)
    }
}

/// EC2's error envelope: `Response/Errors/Error/{Code,Message}` and `RequestID`.
pub fn error_document(err: &ApiError, request_id: &str) -> String {
    let mut x = Xml::fragment();
    x.open("Response")
        .open("Errors")
        .open("Error")
        .leaf("Code", err.code.as_str())
        .leaf("Message", &err.message)
        .close("Error")
        .close("Errors")
        .leaf("RequestID", request_id)
        .close("Response");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        x.into_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gureum_types::ErrorCode;

    #[test]
    fn golden_delete_key_pair() {
        let doc = Response::DeleteKeyPair {
            key_pair_id: Some("key-0123456789abcdef0".into()),
        }
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
        let doc = Response::DescribeKeyPairs {
            keys: vec![key],
            include_public_key: false,
        }
        .render("DescribeKeyPairs", "r");
        assert!(doc.contains(
            "<keySet><item><keyPairId>key-0123456789abcdef0</keyPairId><keyName>demo</keyName>\
             <keyFingerprint>aa:bb</keyFingerprint><keyType>rsa</keyType>\
             <tagSet><item><key>env</key><value>a&amp;b</value></item></tagSet>\
             <createTime>2026-11-26T06:00:00.000Z</createTime></item></keySet>"
        ));
        assert!(!doc.contains("publicKey"));
    }

    #[test]
    fn golden_error_envelope() {
        let e = ApiError::new(
            ErrorCode::InvalidKeyPairNotFound,
            "The key pair 'x' does not exist",
        );
        assert_eq!(
            error_document(&e, "rid"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
             <Code>InvalidKeyPair.NotFound</Code><Message>The key pair &apos;x&apos; does not exist</Message>\
             </Error></Errors><RequestID>rid</RequestID></Response>"
        );
    }
}
