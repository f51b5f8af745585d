//! The catalogue, the same for every account: `DescribeRegions`,
//! `DescribeAvailabilityZones`, `DescribeAccountAttributes`, `DescribeInstanceTypes`,
//! `DescribeInstanceTypeOfferings`.

use gureum_types::instance_types::InstanceTypeInfo;
use gureum_types::model::Filter;
use gureum_types::region::{Region, Zone};

use crate::action::{one_of, take_page, Page};
use crate::ops::{Op, Resource};
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Only the configured region exists; `AllRegions` changes nothing.
    DescribeRegions {
        region_names: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAvailabilityZones {
        zone_names: Vec<String>,
        zone_ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAccountAttributes {
        attribute_names: Vec<String>,
    },
    DescribeInstanceTypes {
        instance_types: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeInstanceTypeOfferings {
        /// `region`, `availability-zone` or `availability-zone-id`.
        location_type: String,
        filters: Vec<Filter>,
        page: Page,
    },
}

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
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::read("DescribeRegions", |p| {
            let region_names = p.take_list("RegionName")?;
            let filters = p.take_filters()?;
            p.take_bool("AllRegions")?;
            Ok(Action::DescribeRegions {
                region_names,
                filters,
            })
        }),
        Op::read("DescribeAvailabilityZones", |p| {
            let zone_names = p.take_list("ZoneName")?;
            let zone_ids = p.take_list("ZoneId")?;
            let filters = p.take_filters()?;
            p.take_bool("AllAvailabilityZones")?;
            Ok(Action::DescribeAvailabilityZones {
                zone_names,
                zone_ids,
                filters,
            })
        }),
        Op::read("DescribeAccountAttributes", |p| {
            Ok(Action::DescribeAccountAttributes {
                attribute_names: p.take_list("AttributeName")?,
            })
        }),
        Op::read("DescribeInstanceTypes", |p| {
            let instance_types = p.take_list("InstanceType")?;
            let filters = p.take_filters()?;
            let page = take_page(p, 5, 100)?;
            p.take_bool("IncludeUnsupportedInRegion")?;
            Ok(Action::DescribeInstanceTypes {
                instance_types,
                filters,
                page,
            })
        }),
        Op::read("DescribeInstanceTypeOfferings", |p| {
            let location_type = one_of(
                "LocationType",
                p.take("LocationType").unwrap_or_else(|| "region".into()),
                &["region", "availability-zone", "availability-zone-id"],
            )?;
            let filters = p.take_filters()?;
            let page = take_page(p, 5, 1000)?;
            Ok(Action::DescribeInstanceTypeOfferings {
                location_type,
                filters,
                page,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::DescribeRegions { .. } => "DescribeRegions",
            Action::DescribeAvailabilityZones { .. } => "DescribeAvailabilityZones",
            Action::DescribeAccountAttributes { .. } => "DescribeAccountAttributes",
            Action::DescribeInstanceTypes { .. } => "DescribeInstanceTypes",
            Action::DescribeInstanceTypeOfferings { .. } => "DescribeInstanceTypeOfferings",
        }
    }
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
    pub(crate) fn write(&self, x: &mut Xml) {
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
        }
    }
}
