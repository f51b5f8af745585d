//! The instance-type catalogue: AWS's published figures for every type gureum offers.
//!
//! Owned here: the static table and lookups. Rendering it as XML belongs to `gureum-ec2`,
//! filtering to the Describe machinery in `gureum-core`.

// Where the figures come from. Every value is what `DescribeInstanceTypes` returns in
// us-east-1, taken from two dumps of that call that moto vendors in
// `moto/ec2/resources/instance_types.json`: an older one (getmoto/moto 76bbd3f, before
// AWS's July 2025 free-tier change) and a current one (getmoto/moto 008b9e1). The two agree
// on every figure in this table except the two noted below; fields only the newer dump
// carries (processor manufacturer, EBS attachment limits, reboot migration, flexible ENA
// queues) come from it. Interface and address counts for T3 and M5 were spot-checked
// against published copies of AWS's network specification tables.
//
// Where the dumps disagree:
// - `FreeTierEligible`: the old dump marks only t2.micro, the new one t3.micro and
//   t3.small. gureum's spec fixes the pair at t2.micro and t3.micro, so scripts written
//   for either free tier find the type they ask for.
// - `CurrentGeneration` for c5, m5 and r5: true in the old dump, false in the new one
//   (AWS re-labelled older Nitro families in 2025). gureum keeps true, matching the era
//   the free-tier choice above belongs to and what clients filtering on
//   `current-generation=true` expect to find.
//
// AWS leaves `ValidCores`/`ValidThreadsPerCore` out for T2 (it does not support CPU
// options); here that is an empty slice, and the matching filters have no values.

/// One instance type, with the fields `DescribeInstanceTypes` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceTypeInfo {
    /// `t2.micro`
    pub name: &'static str,
    pub current_generation: bool,
    pub free_tier_eligible: bool,
    /// `["on-demand", "spot"]`
    pub supported_usage_classes: &'static [&'static str],
    /// `["ebs"]`
    pub supported_root_device_types: &'static [&'static str],
    /// `["hvm"]`
    pub supported_virtualization_types: &'static [&'static str],
    pub bare_metal: bool,
    /// `"xen"` or `"nitro"`
    pub hypervisor: &'static str,
    /// `["x86_64"]` (t2 small types also list `i386`)
    pub architectures: &'static [&'static str],
    pub sustained_clock_speed_ghz: f64,
    /// `"Intel"` or `"AMD"`
    pub processor_manufacturer: &'static str,
    pub default_vcpus: u32,
    pub default_cores: u32,
    pub default_threads_per_core: u32,
    /// Empty where AWS omits the list (T2, which has no CPU options).
    pub valid_cores: &'static [u32],
    /// Empty where AWS omits the list (T2, which has no CPU options).
    pub valid_threads_per_core: &'static [u32],
    pub memory_mib: u64,
    /// `"unsupported" | "supported" | "default"`
    pub ebs_optimized_support: &'static str,
    /// `"unsupported" | "supported"`
    pub ebs_encryption_support: &'static str,
    /// `"unsupported" | "supported" | "required"`
    pub ebs_nvme_support: &'static str,
    /// `"Low to Moderate"`, `"Up to 5 Gigabit"`, `"Up to 10 Gigabit"`, …
    pub network_performance: &'static str,
    pub maximum_network_interfaces: u32,
    pub ipv4_addresses_per_interface: u32,
    pub ipv6_addresses_per_interface: u32,
    pub ipv6_supported: bool,
    /// `"unsupported" | "supported" | "required"`
    pub ena_support: &'static str,
    pub burstable_performance_supported: bool,
    pub hibernation_supported: bool,
    pub auto_recovery_supported: bool,
    pub dedicated_hosts_supported: bool,
    /// `["partition", "spread"]` etc.
    pub placement_group_strategies: &'static [&'static str],
    /// `["legacy-bios"]` or `["legacy-bios", "uefi"]`
    pub supported_boot_modes: &'static [&'static str],
    // The fields below carry the rest of what `DescribeInstanceTypes` reports, so that every
    // documented filter has a value to match and the renderer has the full record.
    /// `EbsInfo.EbsOptimizedInfo`; `None` where EBS optimisation is unsupported (T2).
    pub ebs_optimized_info: Option<EbsOptimizedInfo>,
    /// `EbsInfo.AttachmentLimitType`: `"shared"` or `"dedicated"`.
    pub ebs_attachment_limit_type: &'static str,
    /// `EbsInfo.MaximumEbsAttachments`.
    pub maximum_ebs_attachments: u32,
    /// `NetworkInfo.MaximumNetworkCards`.
    pub maximum_network_cards: u32,
    /// `NetworkInfo.NetworkCards[0].BaselineBandwidthInGbps`.
    pub baseline_bandwidth_gbps: f64,
    /// `NetworkInfo.NetworkCards[0].PeakBandwidthInGbps`.
    pub peak_bandwidth_gbps: f64,
    pub efa_supported: bool,
    pub encryption_in_transit_supported: bool,
    /// `"unsupported" | "supported"`
    pub flexible_ena_queues_support: &'static str,
    /// `"unsupported" | "supported"`
    pub nitro_enclaves_support: &'static str,
    /// `"unsupported" | "supported"`
    pub nitro_tpm_support: &'static str,
    /// `NitroTpmInfo.SupportedVersions`: `["2.0"]`, empty where NitroTPM is unsupported.
    pub nitro_tpm_versions: &'static [&'static str],
    /// `"unsupported" | "supported"`
    pub reboot_migration_support: &'static str,
}

/// `EbsInfo.EbsOptimizedInfo` of an instance type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EbsOptimizedInfo {
    pub baseline_bandwidth_mbps: u32,
    /// MB/s, as AWS reports `BaselineThroughputInMBps`.
    pub baseline_throughput_mbps: f64,
    pub baseline_iops: u32,
    pub maximum_bandwidth_mbps: u32,
    /// MB/s, as AWS reports `MaximumThroughputInMBps`.
    pub maximum_throughput_mbps: f64,
    pub maximum_iops: u32,
}

const ON_DEMAND_SPOT: &[&str] = &["on-demand", "spot"];
const EBS: &[&str] = &["ebs"];
const HVM: &[&str] = &["hvm"];
const X86_64: &[&str] = &["x86_64"];
const I386_X86_64: &[&str] = &["i386", "x86_64"];
const PARTITION_SPREAD: &[&str] = &["partition", "spread"];
const CLUSTER_PARTITION_SPREAD: &[&str] = &["cluster", "partition", "spread"];
const LEGACY_BIOS: &[&str] = &["legacy-bios"];
const LEGACY_BIOS_UEFI: &[&str] = &["legacy-bios", "uefi"];
const TPM_2_0: &[&str] = &["2.0"];
const THREADS_1_2: &[u32] = &[1, 2];

/// EBS-optimised figures, each side as (bandwidth in Mbps, throughput in MB/s, IOPS), the
/// order AWS's specification tables use.
const fn ebs(baseline: (u32, f64, u32), maximum: (u32, f64, u32)) -> Option<EbsOptimizedInfo> {
    Some(EbsOptimizedInfo {
        baseline_bandwidth_mbps: baseline.0,
        baseline_throughput_mbps: baseline.1,
        baseline_iops: baseline.2,
        maximum_bandwidth_mbps: maximum.0,
        maximum_throughput_mbps: maximum.1,
        maximum_iops: maximum.2,
    })
}

// T3 and T3a share their EBS burst ceilings: one below large, one from large up. Their
// baselines differ slightly below large, so each entry states its own.
const T3_EBS_MAX_SMALL: (u32, f64, u32) = (2085, 260.625, 11800);
const T3_EBS_MAX_LARGE: (u32, f64, u32) = (2780, 347.5, 15700);
// M5, C5 and R5 all burst EBS to 4750 Mbps; M5 and R5 to 18750 IOPS, C5 to 20000.
const M5_R5_EBS_MAX: (u32, f64, u32) = (4750, 593.75, 18750);
const C5_EBS_MAX: (u32, f64, u32) = (4750, 593.75, 20000);

/// What every T2 size shares: Xen, no ENA, no EBS optimisation, no NVMe, no CPU options.
const T2: InstanceTypeInfo = InstanceTypeInfo {
    name: "",
    current_generation: true,
    free_tier_eligible: false,
    supported_usage_classes: ON_DEMAND_SPOT,
    supported_root_device_types: EBS,
    supported_virtualization_types: HVM,
    bare_metal: false,
    hypervisor: "xen",
    architectures: X86_64,
    sustained_clock_speed_ghz: 2.3,
    processor_manufacturer: "Intel",
    default_vcpus: 1,
    default_cores: 1,
    default_threads_per_core: 1,
    valid_cores: &[],
    valid_threads_per_core: &[],
    memory_mib: 0,
    ebs_optimized_support: "unsupported",
    ebs_encryption_support: "supported",
    ebs_nvme_support: "unsupported",
    network_performance: "Low to Moderate",
    maximum_network_interfaces: 3,
    ipv4_addresses_per_interface: 0,
    ipv6_addresses_per_interface: 0,
    ipv6_supported: true,
    ena_support: "unsupported",
    burstable_performance_supported: true,
    hibernation_supported: true,
    auto_recovery_supported: true,
    dedicated_hosts_supported: false,
    placement_group_strategies: PARTITION_SPREAD,
    supported_boot_modes: LEGACY_BIOS,
    ebs_optimized_info: None,
    ebs_attachment_limit_type: "shared",
    maximum_ebs_attachments: 40,
    maximum_network_cards: 1,
    baseline_bandwidth_gbps: 0.0,
    peak_bandwidth_gbps: 1.024,
    efa_supported: false,
    encryption_in_transit_supported: false,
    flexible_ena_queues_support: "unsupported",
    nitro_enclaves_support: "unsupported",
    nitro_tpm_support: "unsupported",
    nitro_tpm_versions: &[],
    reboot_migration_support: "supported",
};

/// What every T3 size shares: Nitro, Intel at 2.5 GHz, up to 5 Gigabit.
const T3: InstanceTypeInfo = InstanceTypeInfo {
    name: "",
    current_generation: true,
    free_tier_eligible: false,
    supported_usage_classes: ON_DEMAND_SPOT,
    supported_root_device_types: EBS,
    supported_virtualization_types: HVM,
    bare_metal: false,
    hypervisor: "nitro",
    architectures: X86_64,
    sustained_clock_speed_ghz: 2.5,
    processor_manufacturer: "Intel",
    default_vcpus: 2,
    default_cores: 1,
    default_threads_per_core: 2,
    valid_cores: &[1],
    valid_threads_per_core: THREADS_1_2,
    memory_mib: 0,
    ebs_optimized_support: "default",
    ebs_encryption_support: "supported",
    ebs_nvme_support: "required",
    network_performance: "Up to 5 Gigabit",
    maximum_network_interfaces: 3,
    ipv4_addresses_per_interface: 0,
    ipv6_addresses_per_interface: 0,
    ipv6_supported: true,
    ena_support: "required",
    burstable_performance_supported: true,
    hibernation_supported: true,
    auto_recovery_supported: true,
    dedicated_hosts_supported: true,
    placement_group_strategies: PARTITION_SPREAD,
    supported_boot_modes: LEGACY_BIOS_UEFI,
    ebs_optimized_info: None,
    ebs_attachment_limit_type: "shared",
    maximum_ebs_attachments: 27,
    maximum_network_cards: 1,
    baseline_bandwidth_gbps: 0.0,
    peak_bandwidth_gbps: 5.0,
    efa_supported: false,
    encryption_in_transit_supported: false,
    flexible_ena_queues_support: "unsupported",
    nitro_enclaves_support: "unsupported",
    nitro_tpm_support: "supported",
    nitro_tpm_versions: TPM_2_0,
    reboot_migration_support: "supported",
};

/// T3a is T3 on AMD EPYC at 2.2 GHz, without Dedicated Hosts.
const T3A: InstanceTypeInfo = InstanceTypeInfo {
    sustained_clock_speed_ghz: 2.2,
    processor_manufacturer: "AMD",
    dedicated_hosts_supported: false,
    ..T3
};

/// What the M5, C5 and R5 sizes in the catalogue share: Nitro, Intel, up to 10 Gigabit.
const M5_C5_R5: InstanceTypeInfo = InstanceTypeInfo {
    name: "",
    current_generation: true,
    free_tier_eligible: false,
    supported_usage_classes: ON_DEMAND_SPOT,
    supported_root_device_types: EBS,
    supported_virtualization_types: HVM,
    bare_metal: false,
    hypervisor: "nitro",
    architectures: X86_64,
    sustained_clock_speed_ghz: 3.1,
    processor_manufacturer: "Intel",
    default_vcpus: 2,
    default_cores: 1,
    default_threads_per_core: 2,
    valid_cores: &[1],
    valid_threads_per_core: THREADS_1_2,
    memory_mib: 0,
    ebs_optimized_support: "default",
    ebs_encryption_support: "supported",
    ebs_nvme_support: "required",
    network_performance: "Up to 10 Gigabit",
    maximum_network_interfaces: 3,
    ipv4_addresses_per_interface: 10,
    ipv6_addresses_per_interface: 10,
    ipv6_supported: true,
    ena_support: "required",
    burstable_performance_supported: false,
    hibernation_supported: true,
    auto_recovery_supported: true,
    dedicated_hosts_supported: true,
    placement_group_strategies: CLUSTER_PARTITION_SPREAD,
    supported_boot_modes: LEGACY_BIOS_UEFI,
    ebs_optimized_info: None,
    ebs_attachment_limit_type: "shared",
    maximum_ebs_attachments: 27,
    maximum_network_cards: 1,
    baseline_bandwidth_gbps: 0.75,
    peak_bandwidth_gbps: 10.0,
    efa_supported: false,
    encryption_in_transit_supported: false,
    flexible_ena_queues_support: "unsupported",
    // Nitro Enclaves needs vCPUs to spare, so AWS supports it from xlarge up.
    nitro_enclaves_support: "supported",
    nitro_tpm_support: "supported",
    nitro_tpm_versions: TPM_2_0,
    reboot_migration_support: "supported",
};

/// The large size of M5, C5 and R5: 2 vCPUs, 10 addresses on each of 3 interfaces.
const LARGE: InstanceTypeInfo = InstanceTypeInfo {
    nitro_enclaves_support: "unsupported",
    ..M5_C5_R5
};

/// The xlarge size of M5, C5 and R5: 4 vCPUs, 15 addresses on each of 4 interfaces.
const XLARGE: InstanceTypeInfo = InstanceTypeInfo {
    default_vcpus: 4,
    default_cores: 2,
    valid_cores: &[2],
    maximum_network_interfaces: 4,
    ipv4_addresses_per_interface: 15,
    ipv6_addresses_per_interface: 15,
    baseline_bandwidth_gbps: 1.25,
    ..M5_C5_R5
};

/// The 2xlarge size of M5, C5 and R5: 8 vCPUs, 15 addresses on each of 4 interfaces.
const XLARGE2: InstanceTypeInfo = InstanceTypeInfo {
    default_vcpus: 8,
    default_cores: 4,
    valid_cores: &[2, 4],
    maximum_network_interfaces: 4,
    ipv4_addresses_per_interface: 15,
    ipv6_addresses_per_interface: 15,
    baseline_bandwidth_gbps: 2.5,
    ..M5_C5_R5
};

/// Every type gureum offers, sorted by family then size.
pub static CATALOGUE: &[InstanceTypeInfo] = &[
    // T2: Xen, burstable, 1 thread per core. The four smallest also run 32-bit AMIs.
    InstanceTypeInfo {
        name: "t2.nano",
        // AWS sells t2.nano on demand only; it is the one type here without spot.
        supported_usage_classes: &["on-demand"],
        architectures: I386_X86_64,
        sustained_clock_speed_ghz: 2.4,
        memory_mib: 512,
        maximum_network_interfaces: 2,
        ipv4_addresses_per_interface: 2,
        ipv6_addresses_per_interface: 2,
        baseline_bandwidth_gbps: 0.032,
        peak_bandwidth_gbps: 0.512,
        ..T2
    },
    InstanceTypeInfo {
        name: "t2.micro",
        free_tier_eligible: true,
        architectures: I386_X86_64,
        sustained_clock_speed_ghz: 2.5,
        memory_mib: 1024,
        maximum_network_interfaces: 2,
        ipv4_addresses_per_interface: 2,
        ipv6_addresses_per_interface: 2,
        baseline_bandwidth_gbps: 0.064,
        ..T2
    },
    InstanceTypeInfo {
        name: "t2.small",
        architectures: I386_X86_64,
        sustained_clock_speed_ghz: 2.5,
        memory_mib: 2048,
        ipv4_addresses_per_interface: 4,
        ipv6_addresses_per_interface: 4,
        baseline_bandwidth_gbps: 0.128,
        ..T2
    },
    InstanceTypeInfo {
        name: "t2.medium",
        architectures: I386_X86_64,
        default_vcpus: 2,
        default_cores: 2,
        memory_mib: 4096,
        ipv4_addresses_per_interface: 6,
        ipv6_addresses_per_interface: 6,
        baseline_bandwidth_gbps: 0.256,
        ..T2
    },
    InstanceTypeInfo {
        name: "t2.large",
        default_vcpus: 2,
        default_cores: 2,
        memory_mib: 8192,
        ipv4_addresses_per_interface: 12,
        ipv6_addresses_per_interface: 12,
        baseline_bandwidth_gbps: 0.512,
        ..T2
    },
    InstanceTypeInfo {
        name: "t2.xlarge",
        default_vcpus: 4,
        default_cores: 4,
        memory_mib: 16384,
        network_performance: "Moderate",
        ipv4_addresses_per_interface: 15,
        ipv6_addresses_per_interface: 15,
        baseline_bandwidth_gbps: 0.75,
        ..T2
    },
    InstanceTypeInfo {
        name: "t2.2xlarge",
        default_vcpus: 8,
        default_cores: 8,
        memory_mib: 32768,
        network_performance: "Moderate",
        ipv4_addresses_per_interface: 15,
        ipv6_addresses_per_interface: 15,
        baseline_bandwidth_gbps: 1.0,
        ..T2
    },
    // T3: Nitro, Intel, 2 threads per core; the CPU credit baseline scales the EBS and
    // network baselines, the burst ceilings are shared.
    InstanceTypeInfo {
        name: "t3.nano",
        memory_mib: 512,
        maximum_network_interfaces: 2,
        ipv4_addresses_per_interface: 2,
        ipv6_addresses_per_interface: 2,
        ebs_optimized_info: ebs((43, 5.375, 250), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.032,
        ..T3
    },
    InstanceTypeInfo {
        name: "t3.micro",
        free_tier_eligible: true,
        memory_mib: 1024,
        maximum_network_interfaces: 2,
        ipv4_addresses_per_interface: 2,
        ipv6_addresses_per_interface: 2,
        ebs_optimized_info: ebs((87, 10.875, 500), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.064,
        ..T3
    },
    InstanceTypeInfo {
        name: "t3.small",
        memory_mib: 2048,
        ipv4_addresses_per_interface: 4,
        ipv6_addresses_per_interface: 4,
        ebs_optimized_info: ebs((174, 21.75, 1000), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.128,
        ..T3
    },
    InstanceTypeInfo {
        name: "t3.medium",
        memory_mib: 4096,
        ipv4_addresses_per_interface: 6,
        ipv6_addresses_per_interface: 6,
        ebs_optimized_info: ebs((347, 43.375, 2000), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.256,
        ..T3
    },
    InstanceTypeInfo {
        name: "t3.large",
        memory_mib: 8192,
        ipv4_addresses_per_interface: 12,
        ipv6_addresses_per_interface: 12,
        ebs_optimized_info: ebs((695, 86.875, 4000), T3_EBS_MAX_LARGE),
        baseline_bandwidth_gbps: 0.512,
        ..T3
    },
    InstanceTypeInfo {
        name: "t3.xlarge",
        default_vcpus: 4,
        default_cores: 2,
        valid_cores: &[2],
        memory_mib: 16384,
        maximum_network_interfaces: 4,
        ipv4_addresses_per_interface: 15,
        ipv6_addresses_per_interface: 15,
        ebs_optimized_info: ebs((695, 86.875, 4000), T3_EBS_MAX_LARGE),
        baseline_bandwidth_gbps: 1.024,
        ..T3
    },
    InstanceTypeInfo {
        name: "t3.2xlarge",
        default_vcpus: 8,
        default_cores: 4,
        valid_cores: &[2, 4],
        memory_mib: 32768,
        maximum_network_interfaces: 4,
        ipv4_addresses_per_interface: 15,
        ipv6_addresses_per_interface: 15,
        ebs_optimized_info: ebs((695, 86.875, 4000), T3_EBS_MAX_LARGE),
        baseline_bandwidth_gbps: 2.048,
        ..T3
    },
    // T3a: as T3, on AMD.
    InstanceTypeInfo {
        name: "t3a.nano",
        memory_mib: 512,
        maximum_network_interfaces: 2,
        ipv4_addresses_per_interface: 2,
        ipv6_addresses_per_interface: 2,
        ebs_optimized_info: ebs((45, 5.625, 250), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.032,
        ..T3A
    },
    InstanceTypeInfo {
        name: "t3a.micro",
        memory_mib: 1024,
        maximum_network_interfaces: 2,
        ipv4_addresses_per_interface: 2,
        ipv6_addresses_per_interface: 2,
        ebs_optimized_info: ebs((90, 11.25, 500), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.064,
        ..T3A
    },
    InstanceTypeInfo {
        name: "t3a.small",
        memory_mib: 2048,
        // Unlike t3.small (3), AWS allows t3a.small only 2 network interfaces.
        maximum_network_interfaces: 2,
        ipv4_addresses_per_interface: 4,
        ipv6_addresses_per_interface: 4,
        ebs_optimized_info: ebs((175, 21.875, 1000), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.128,
        ..T3A
    },
    InstanceTypeInfo {
        name: "t3a.medium",
        memory_mib: 4096,
        ipv4_addresses_per_interface: 6,
        ipv6_addresses_per_interface: 6,
        ebs_optimized_info: ebs((350, 43.75, 2000), T3_EBS_MAX_SMALL),
        baseline_bandwidth_gbps: 0.256,
        ..T3A
    },
    InstanceTypeInfo {
        name: "t3a.large",
        memory_mib: 8192,
        ipv4_addresses_per_interface: 12,
        ipv6_addresses_per_interface: 12,
        ebs_optimized_info: ebs((695, 86.875, 4000), T3_EBS_MAX_LARGE),
        baseline_bandwidth_gbps: 0.512,
        ..T3A
    },
    InstanceTypeInfo {
        name: "t3a.xlarge",
        default_vcpus: 4,
        default_cores: 2,
        valid_cores: &[2],
        memory_mib: 16384,
        maximum_network_interfaces: 4,
        ipv4_addresses_per_interface: 15,
        ipv6_addresses_per_interface: 15,
        ebs_optimized_info: ebs((695, 86.875, 4000), T3_EBS_MAX_LARGE),
        baseline_bandwidth_gbps: 1.024,
        ..T3A
    },
    InstanceTypeInfo {
        name: "t3a.2xlarge",
        default_vcpus: 8,
        default_cores: 4,
        valid_cores: &[2, 4],
        memory_mib: 32768,
        maximum_network_interfaces: 4,
        ipv4_addresses_per_interface: 15,
        ipv6_addresses_per_interface: 15,
        ebs_optimized_info: ebs((695, 86.875, 4000), T3_EBS_MAX_LARGE),
        baseline_bandwidth_gbps: 2.048,
        ..T3A
    },
    // M5: Intel at 3.1 GHz, 4 GiB per vCPU.
    InstanceTypeInfo {
        name: "m5.large",
        memory_mib: 8192,
        ebs_optimized_info: ebs((650, 81.25, 3600), M5_R5_EBS_MAX),
        ..LARGE
    },
    InstanceTypeInfo {
        name: "m5.xlarge",
        memory_mib: 16384,
        ebs_optimized_info: ebs((1150, 143.75, 6000), M5_R5_EBS_MAX),
        ..XLARGE
    },
    InstanceTypeInfo {
        name: "m5.2xlarge",
        memory_mib: 32768,
        ebs_optimized_info: ebs((2300, 287.5, 12000), M5_R5_EBS_MAX),
        ..XLARGE2
    },
    // C5: Intel at 3.4 GHz, 2 GiB per vCPU.
    InstanceTypeInfo {
        name: "c5.large",
        sustained_clock_speed_ghz: 3.4,
        memory_mib: 4096,
        ebs_optimized_info: ebs((650, 81.25, 4000), C5_EBS_MAX),
        ..LARGE
    },
    InstanceTypeInfo {
        name: "c5.xlarge",
        sustained_clock_speed_ghz: 3.4,
        memory_mib: 8192,
        ebs_optimized_info: ebs((1150, 143.75, 6000), C5_EBS_MAX),
        ..XLARGE
    },
    InstanceTypeInfo {
        name: "c5.2xlarge",
        sustained_clock_speed_ghz: 3.4,
        memory_mib: 16384,
        ebs_optimized_info: ebs((2300, 287.5, 10000), C5_EBS_MAX),
        ..XLARGE2
    },
    // R5: Intel at 3.1 GHz, 8 GiB per vCPU.
    InstanceTypeInfo {
        name: "r5.large",
        memory_mib: 16384,
        ebs_optimized_info: ebs((650, 81.25, 3600), M5_R5_EBS_MAX),
        ..LARGE
    },
    InstanceTypeInfo {
        name: "r5.xlarge",
        memory_mib: 32768,
        ebs_optimized_info: ebs((1150, 143.75, 6000), M5_R5_EBS_MAX),
        ..XLARGE
    },
    InstanceTypeInfo {
        name: "r5.2xlarge",
        memory_mib: 65536,
        ebs_optimized_info: ebs((2300, 287.5, 12000), M5_R5_EBS_MAX),
        ..XLARGE2
    },
];

/// Look a type up by its API name.
pub fn lookup(name: &str) -> Option<&'static InstanceTypeInfo> {
    CATALOGUE.iter().find(|t| t.name == name)
}

/// Every filter name `DescribeInstanceTypes` documents (botocore's EC2 model), in that
/// order. [`InstanceTypeInfo::filter_values`] answers each of them for every type.
pub const FILTER_NAMES: &[&str] = &[
    "auto-recovery-supported",
    "bare-metal",
    "burstable-performance-supported",
    "current-generation",
    "dedicated-hosts-supported",
    "ebs-info.attachment-limit-type",
    "ebs-info.maximum-ebs-attachments",
    "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.baseline-iops",
    "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-iops",
    "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps",
    "ebs-info.ebs-optimized-support",
    "ebs-info.encryption-support",
    "ebs-info.nvme-support",
    "free-tier-eligible",
    "hibernation-supported",
    "hypervisor",
    "instance-storage-info.disk.count",
    "instance-storage-info.disk.size-in-gb",
    "instance-storage-info.disk.type",
    "instance-storage-info.encryption-support",
    "instance-storage-info.nvme-support",
    "instance-storage-info.total-size-in-gb",
    "instance-storage-supported",
    "instance-type",
    "memory-info.size-in-mib",
    "network-info.bandwidth-weightings",
    "network-info.efa-info.maximum-efa-interfaces",
    "network-info.efa-supported",
    "network-info.ena-support",
    "network-info.flexible-ena-queues-support",
    "network-info.encryption-in-transit-supported",
    "network-info.ipv4-addresses-per-interface",
    "network-info.ipv6-addresses-per-interface",
    "network-info.ipv6-supported",
    "network-info.maximum-network-cards",
    "network-info.maximum-network-interfaces",
    "network-info.network-performance",
    "nitro-enclaves-support",
    "nitro-tpm-support",
    "nitro-tpm-info.supported-versions",
    "processor-info.supported-architecture",
    "processor-info.sustained-clock-speed-in-ghz",
    "processor-info.supported-features",
    "reboot-migration-support",
    "supported-boot-mode",
    "supported-root-device-type",
    "supported-usage-class",
    "supported-virtualization-type",
    "vcpu-info.default-cores",
    "vcpu-info.default-threads-per-core",
    "vcpu-info.default-vcpus",
    "vcpu-info.valid-cores",
    "vcpu-info.valid-threads-per-core",
];

impl InstanceTypeInfo {
    /// The family part of the name: `"t2"` for `t2.micro`, `"t3a"` for `t3a.large`.
    pub fn family(&self) -> &'static str {
        let name: &'static str = self.name;
        name.split_once('.').map_or(name, |(family, _)| family)
    }

    /// This type's values for a `DescribeInstanceTypes` filter, as AWS renders them
    /// (booleans `"true"`/`"false"`, numbers in decimal, `2.5` for GHz). A filter matches
    /// when any requested value matches any of these. An empty list means the type has no
    /// such attribute (T2 has no EBS-optimised figures, nothing here has instance store),
    /// so the filter excludes it. `None` means the filter name is not one AWS documents.
    pub fn filter_values(&self, filter_name: &str) -> Option<Vec<String>> {
        let ebs = self.ebs_optimized_info.as_ref();
        let values = match filter_name {
            "auto-recovery-supported" => one(self.auto_recovery_supported),
            "bare-metal" => one(self.bare_metal),
            "burstable-performance-supported" => one(self.burstable_performance_supported),
            "current-generation" => one(self.current_generation),
            "dedicated-hosts-supported" => one(self.dedicated_hosts_supported),
            "ebs-info.attachment-limit-type" => one(self.ebs_attachment_limit_type),
            "ebs-info.maximum-ebs-attachments" => one(self.maximum_ebs_attachments),
            "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps" => ebs
                .map(|e| e.baseline_bandwidth_mbps.to_string())
                .into_iter()
                .collect(),
            "ebs-info.ebs-optimized-info.baseline-iops" => ebs
                .map(|e| e.baseline_iops.to_string())
                .into_iter()
                .collect(),
            "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps" => ebs
                .map(|e| decimal(e.baseline_throughput_mbps))
                .into_iter()
                .collect(),
            "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps" => ebs
                .map(|e| e.maximum_bandwidth_mbps.to_string())
                .into_iter()
                .collect(),
            "ebs-info.ebs-optimized-info.maximum-iops" => ebs
                .map(|e| e.maximum_iops.to_string())
                .into_iter()
                .collect(),
            "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps" => ebs
                .map(|e| decimal(e.maximum_throughput_mbps))
                .into_iter()
                .collect(),
            "ebs-info.ebs-optimized-support" => one(self.ebs_optimized_support),
            "ebs-info.encryption-support" => one(self.ebs_encryption_support),
            "ebs-info.nvme-support" => one(self.ebs_nvme_support),
            "free-tier-eligible" => one(self.free_tier_eligible),
            "hibernation-supported" => one(self.hibernation_supported),
            "hypervisor" => one(self.hypervisor),
            // The catalogue holds only EBS-only types: no instance-store disks to describe.
            "instance-storage-info.disk.count"
            | "instance-storage-info.disk.size-in-gb"
            | "instance-storage-info.disk.type"
            | "instance-storage-info.encryption-support"
            | "instance-storage-info.nvme-support"
            | "instance-storage-info.total-size-in-gb" => Vec::new(),
            "instance-storage-supported" => one(false),
            "instance-type" => one(self.name),
            "memory-info.size-in-mib" => one(self.memory_mib),
            // Bandwidth weighting and EFA exist only on newer, larger types than these.
            "network-info.bandwidth-weightings" => Vec::new(),
            "network-info.efa-info.maximum-efa-interfaces" => Vec::new(),
            "network-info.efa-supported" => one(self.efa_supported),
            "network-info.ena-support" => one(self.ena_support),
            "network-info.flexible-ena-queues-support" => one(self.flexible_ena_queues_support),
            "network-info.encryption-in-transit-supported" => {
                one(self.encryption_in_transit_supported)
            }
            "network-info.ipv4-addresses-per-interface" => one(self.ipv4_addresses_per_interface),
            "network-info.ipv6-addresses-per-interface" => one(self.ipv6_addresses_per_interface),
            "network-info.ipv6-supported" => one(self.ipv6_supported),
            "network-info.maximum-network-cards" => one(self.maximum_network_cards),
            "network-info.maximum-network-interfaces" => one(self.maximum_network_interfaces),
            "network-info.network-performance" => one(self.network_performance),
            "nitro-enclaves-support" => one(self.nitro_enclaves_support),
            "nitro-tpm-support" => one(self.nitro_tpm_support),
            "nitro-tpm-info.supported-versions" => all(self.nitro_tpm_versions),
            "processor-info.supported-architecture" => all(self.architectures),
            "processor-info.sustained-clock-speed-in-ghz" => {
                vec![decimal(self.sustained_clock_speed_ghz)]
            }
            // The only documented feature is AMD SEV-SNP, which none of these types offer.
            "processor-info.supported-features" => Vec::new(),
            "reboot-migration-support" => one(self.reboot_migration_support),
            "supported-boot-mode" => all(self.supported_boot_modes),
            "supported-root-device-type" => all(self.supported_root_device_types),
            "supported-usage-class" => all(self.supported_usage_classes),
            "supported-virtualization-type" => all(self.supported_virtualization_types),
            "vcpu-info.default-cores" => one(self.default_cores),
            "vcpu-info.default-threads-per-core" => one(self.default_threads_per_core),
            "vcpu-info.default-vcpus" => one(self.default_vcpus),
            "vcpu-info.valid-cores" => all(self.valid_cores),
            "vcpu-info.valid-threads-per-core" => all(self.valid_threads_per_core),
            _ => return None,
        };
        Some(values)
    }
}

fn one(value: impl ToString) -> Vec<String> {
    vec![value.to_string()]
}

fn all<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// A fractional figure as AWS writes it: `2.5`, `593.75`. `Display` for `f64` prints the
/// shortest form that reads back exactly, so quarters and eighths come out whole; no figure
/// in the catalogue is a whole number, which `Display` would print without `.0`.
fn decimal(value: f64) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILIES: &[&str] = &["t2", "t3", "t3a", "m5", "c5", "r5"];
    const SIZES: &[&str] = &[
        "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge",
    ];

    fn rank(t: &InstanceTypeInfo) -> (usize, usize) {
        let (family, size) = t.name.split_once('.').expect("name has a dot");
        let f = FAMILIES.iter().position(|x| *x == family);
        let s = SIZES.iter().position(|x| *x == size);
        (
            f.unwrap_or_else(|| panic!("{}: unknown family", t.name)),
            s.unwrap_or_else(|| panic!("{}: unknown size", t.name)),
        )
    }

    #[test]
    fn holds_the_thirty_required_types() {
        let mut required = Vec::new();
        for family in ["t2", "t3", "t3a"] {
            for size in SIZES {
                required.push(format!("{family}.{size}"));
            }
        }
        for family in ["m5", "c5", "r5"] {
            for size in ["large", "xlarge", "2xlarge"] {
                required.push(format!("{family}.{size}"));
            }
        }
        assert_eq!(required.len(), 30);
        for name in &required {
            assert!(lookup(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn names_are_unique_and_sorted_by_family_then_size() {
        let ranks: Vec<_> = CATALOGUE.iter().map(rank).collect();
        for pair in ranks.windows(2) {
            assert!(pair[0] < pair[1], "out of order or duplicated: {pair:?}");
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
    }

    #[test]
    fn vcpus_are_cores_times_threads() {
        for t in CATALOGUE {
            assert_eq!(
                t.default_vcpus,
                t.default_cores * t.default_threads_per_core,
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn cpu_options_include_the_defaults() {
        for t in CATALOGUE {
            if t.family() == "t2" {
                // AWS reports no CPU options for T2.
                assert!(t.valid_cores.is_empty() && t.valid_threads_per_core.is_empty());
                continue;
            }
            assert!(t.valid_cores.contains(&t.default_cores), "{}", t.name);
            assert!(
                t.valid_threads_per_core
                    .contains(&t.default_threads_per_core),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn family_records_agree_with_the_family() {
        for t in CATALOGUE {
            let xen = t.family() == "t2";
            assert_eq!(
                t.hypervisor,
                if xen { "xen" } else { "nitro" },
                "{}",
                t.name
            );
            assert_eq!(t.ena_support, if xen { "unsupported" } else { "required" });
            assert_eq!(
                t.ebs_optimized_info.is_some(),
                t.ebs_optimized_support != "unsupported"
            );
            assert_eq!(
                t.nitro_tpm_versions.is_empty(),
                t.nitro_tpm_support == "unsupported"
            );
            assert_eq!(
                t.burstable_performance_supported,
                t.family().starts_with('t')
            );
            let amd = t.family() == "t3a";
            assert_eq!(t.processor_manufacturer, if amd { "AMD" } else { "Intel" });
            assert!(
                t.memory_mib > 0 && t.ipv4_addresses_per_interface > 0,
                "{}",
                t.name
            );
            assert!(t.baseline_bandwidth_gbps > 0.0, "{}", t.name);
            assert!(
                t.baseline_bandwidth_gbps <= t.peak_bandwidth_gbps,
                "{}",
                t.name
            );
            if let Some(e) = t.ebs_optimized_info {
                assert!(
                    e.baseline_bandwidth_mbps <= e.maximum_bandwidth_mbps,
                    "{}",
                    t.name
                );
                assert!(e.baseline_iops <= e.maximum_iops, "{}", t.name);
                // Throughput in MB/s is bandwidth in Mbit/s over 8.
                assert_eq!(
                    e.maximum_throughput_mbps * 8.0,
                    f64::from(e.maximum_bandwidth_mbps)
                );
                assert_eq!(
                    e.baseline_throughput_mbps * 8.0,
                    f64::from(e.baseline_bandwidth_mbps)
                );
            }
        }
    }

    #[test]
    fn t2_micro_is_the_classic_free_tier_type() {
        let t = lookup("t2.micro").unwrap();
        assert_eq!((t.default_vcpus, t.memory_mib), (1, 1024));
        assert!(t.free_tier_eligible);
        assert_eq!(t.architectures, ["i386", "x86_64"]);
        assert_eq!(t.network_performance, "Low to Moderate");
    }

    #[test]
    fn t3_micro_is_free_tier_too() {
        let t = lookup("t3.micro").unwrap();
        assert_eq!((t.default_vcpus, t.memory_mib), (2, 1024));
        assert!(t.free_tier_eligible);
        assert_eq!(t.network_performance, "Up to 5 Gigabit");
    }

    #[test]
    fn exactly_two_types_are_free_tier() {
        let free: Vec<_> = CATALOGUE
            .iter()
            .filter(|t| t.free_tier_eligible)
            .map(|t| t.name)
            .collect();
        assert_eq!(free, ["t2.micro", "t3.micro"]);
    }

    #[test]
    fn every_filter_answers_for_every_type() {
        for t in CATALOGUE {
            for name in FILTER_NAMES {
                assert!(t.filter_values(name).is_some(), "{} {name}", t.name);
            }
        }
        let mut names = FILTER_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FILTER_NAMES.len(), "duplicate filter name");
    }

    #[test]
    fn unknown_filter_names_are_none() {
        let t = lookup("t3.micro").unwrap();
        assert_eq!(t.filter_values("no-such-filter"), None);
        assert_eq!(t.filter_values("Instance-Type"), None);
        assert_eq!(t.filter_values(""), None);
    }

    #[test]
    fn filter_values_render_as_aws_does() {
        let values = |name: &str, filter: &str| lookup(name).unwrap().filter_values(filter);
        let v = |items: &[&str]| Some(items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(values("t2.micro", "instance-type"), v(&["t2.micro"]));
        assert_eq!(values("t2.micro", "free-tier-eligible"), v(&["true"]));
        assert_eq!(values("t2.small", "free-tier-eligible"), v(&["false"]));
        assert_eq!(values("t2.micro", "current-generation"), v(&["true"]));
        assert_eq!(
            values("t2.micro", "processor-info.supported-architecture"),
            v(&["i386", "x86_64"])
        );
        assert_eq!(
            values("t2.micro", "processor-info.sustained-clock-speed-in-ghz"),
            v(&["2.5"])
        );
        assert_eq!(
            values("c5.large", "processor-info.sustained-clock-speed-in-ghz"),
            v(&["3.4"])
        );
        assert_eq!(values("t2.micro", "hypervisor"), v(&["xen"]));
        assert_eq!(values("t2.micro", "vcpu-info.valid-cores"), v(&[]));
        assert_eq!(
            values("t2.micro", "ebs-info.ebs-optimized-info.baseline-iops"),
            v(&[])
        );
        assert_eq!(
            values("t2.nano", "supported-usage-class"),
            v(&["on-demand"])
        );
        assert_eq!(
            values("t3.micro", "supported-usage-class"),
            v(&["on-demand", "spot"])
        );
        assert_eq!(
            values("t3a.large", "vcpu-info.valid-threads-per-core"),
            v(&["1", "2"])
        );
        assert_eq!(
            values("m5.2xlarge", "vcpu-info.valid-cores"),
            v(&["2", "4"])
        );
        assert_eq!(values("m5.2xlarge", "vcpu-info.default-vcpus"), v(&["8"]));
        assert_eq!(
            values("r5.xlarge", "memory-info.size-in-mib"),
            v(&["32768"])
        );
        assert_eq!(
            values("c5.xlarge", "network-info.network-performance"),
            v(&["Up to 10 Gigabit"])
        );
        assert_eq!(
            values("c5.xlarge", "network-info.maximum-network-interfaces"),
            v(&["4"])
        );
        assert_eq!(
            values("t3a.small", "network-info.maximum-network-interfaces"),
            v(&["2"])
        );
        assert_eq!(
            values("t3.nano", "network-info.ipv4-addresses-per-interface"),
            v(&["2"])
        );
        assert_eq!(
            values("m5.large", "network-info.ena-support"),
            v(&["required"])
        );
        assert_eq!(
            values("m5.large", "nitro-enclaves-support"),
            v(&["unsupported"])
        );
        assert_eq!(
            values("m5.xlarge", "nitro-enclaves-support"),
            v(&["supported"])
        );
        assert_eq!(
            values(
                "m5.large",
                "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps"
            ),
            v(&["593.75"])
        );
        assert_eq!(
            values(
                "t3.nano",
                "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps"
            ),
            v(&["5.375"])
        );
        assert_eq!(
            values("c5.2xlarge", "placement-group-strategies-are-not-a-filter"),
            None
        );
        assert_eq!(
            values("c5.2xlarge", "supported-boot-mode"),
            v(&["legacy-bios", "uefi"])
        );
        assert_eq!(
            values("t2.2xlarge", "supported-boot-mode"),
            v(&["legacy-bios"])
        );
        assert_eq!(
            values("t3.large", "instance-storage-supported"),
            v(&["false"])
        );
        assert_eq!(
            values("t3.large", "instance-storage-info.disk.count"),
            v(&[])
        );
        assert_eq!(values("t3.large", "bare-metal"), v(&["false"]));
    }

    #[test]
    fn lookup_finds_by_exact_name() {
        assert_eq!(lookup("m5.large").map(|t| t.name), Some("m5.large"));
        assert_eq!(lookup("r5.2xlarge").map(|t| t.memory_mib), Some(65536));
        assert!(lookup("M5.LARGE").is_none());
        assert!(lookup("m5").is_none());
        assert!(lookup("m5.metal").is_none());
        assert!(lookup("").is_none());
    }

    #[test]
    fn family_is_the_part_before_the_dot() {
        assert_eq!(lookup("t2.micro").unwrap().family(), "t2");
        assert_eq!(lookup("t3a.2xlarge").unwrap().family(), "t3a");
        assert_eq!(lookup("c5.xlarge").unwrap().family(), "c5");
    }
}
