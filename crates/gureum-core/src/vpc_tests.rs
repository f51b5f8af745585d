//! VPCs, subnets, internet gateways and route tables: every call's happy path and AWS's errors.

use gureum_ec2::ops as ec2;
use gureum_ec2::ops::instances::RunInstances;
use gureum_ec2::ops::vpcs::VpcAttribute;
use gureum_ec2::{Page, Request, Resource};
use gureum_types::model::{
    Filter, InternetGateway, RouteTable, Subnet, Tag, TagSpecification, Vpc,
};
use gureum_types::{ErrorCode, InstanceState, Tenancy};

use crate::images::NewImage;
use crate::{testing, Cloud, Ctx};

struct W {
    _dir: tempfile::TempDir,
    cloud: Cloud,
    ctx: Ctx,
}

fn w() -> W {
    let (dir, cloud, ctx) = testing::cloud();
    W {
        _dir: dir,
        cloud,
        ctx,
    }
}

fn f(name: &str, values: &[&str]) -> Filter {
    Filter {
        name: name.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn name_tag(kind: &str, v: &str) -> Vec<TagSpecification> {
    vec![TagSpecification {
        resource_type: kind.into(),
        tags: vec![Tag {
            key: "Name".into(),
            value: v.into(),
        }],
    }]
}

impl W {
    /// Run one resource's action as `ctx`; its own result back.
    async fn call_as<A: Resource>(&self, ctx: &Ctx, action: A) -> Result<A::Response, ErrorCode> {
        self.cloud
            .dispatch(
                ctx,
                Request {
                    action: action.into(),
                    dry_run: false,
                },
            )
            .await
            .map(|r| A::Response::try_from(r).expect("a result of the action's resource"))
            .map_err(|e| e.to_api().code)
    }
    async fn call<A: Resource>(&self, action: A) -> Result<A::Response, ErrorCode> {
        self.call_as(&self.ctx, action).await
    }
    async fn ok<A: Resource>(&self, action: A) -> A::Response {
        self.call(action).await.unwrap()
    }
    async fn err<A: Resource>(&self, action: A) -> ErrorCode {
        self.call(action).await.unwrap_err()
    }

    async fn vpc(&self, cidr: &str) -> Vpc {
        match self
            .ok(ec2::vpcs::Action::CreateVpc {
                cidr_block: cidr.into(),
                instance_tenancy: Tenancy::Default,
                tag_specifications: name_tag("vpc", "test"),
            })
            .await
        {
            ec2::vpcs::Response::CreateVpc(v) => v,
            r => panic!("{r:?}"),
        }
    }
    async fn subnet(&self, vpc: &str, cidr: &str) -> Result<Subnet, ErrorCode> {
        match self
            .call(ec2::vpcs::Action::CreateSubnet {
                vpc_id: vpc.into(),
                cidr_block: cidr.into(),
                availability_zone: None,
                availability_zone_id: None,
                tag_specifications: vec![],
            })
            .await?
        {
            ec2::vpcs::Response::CreateSubnet(s) => Ok(s),
            r => panic!("{r:?}"),
        }
    }
    async fn igw(&self) -> InternetGateway {
        match self
            .ok(ec2::routing::Action::CreateInternetGateway {
                tag_specifications: name_tag("internet-gateway", "gw"),
            })
            .await
        {
            ec2::routing::Response::CreateInternetGateway(g) => g,
            r => panic!("{r:?}"),
        }
    }
    async fn attach(&self, igw: &str, vpc: &str) -> Result<ec2::routing::Response, ErrorCode> {
        self.call(ec2::routing::Action::AttachInternetGateway {
            internet_gateway_id: igw.into(),
            vpc_id: vpc.into(),
        })
        .await
    }
    async fn detach(&self, igw: &str, vpc: &str) -> Result<ec2::routing::Response, ErrorCode> {
        self.call(ec2::routing::Action::DetachInternetGateway {
            internet_gateway_id: igw.into(),
            vpc_id: vpc.into(),
        })
        .await
    }
    async fn rtb(&self, vpc: &str) -> RouteTable {
        match self
            .ok(ec2::routing::Action::CreateRouteTable {
                vpc_id: vpc.into(),
                client_token: None,
                tag_specifications: name_tag("route-table", "public"),
            })
            .await
        {
            ec2::routing::Response::CreateRouteTable { table, .. } => table,
            r => panic!("{r:?}"),
        }
    }
    async fn route(
        &self,
        replace: bool,
        rtb: &str,
        dest: &str,
        gw: &str,
    ) -> Result<ec2::routing::Response, ErrorCode> {
        self.call(ec2::routing::Action::PutRoute {
            replace,
            route_table_id: rtb.into(),
            destination_cidr_block: dest.into(),
            gateway_id: gw.into(),
        })
        .await
    }
    async fn associate(&self, rtb: &str, subnet: &str) -> Result<String, ErrorCode> {
        match self
            .call(ec2::routing::Action::AssociateRouteTable {
                route_table_id: rtb.into(),
                subnet_id: subnet.into(),
            })
            .await?
        {
            ec2::routing::Response::RouteTableAssociated { association_id, .. } => {
                Ok(association_id)
            }
            r => panic!("{r:?}"),
        }
    }
    async fn tables_as(
        &self,
        ctx: &Ctx,
        ids: &[&str],
        filters: Vec<Filter>,
    ) -> Result<Vec<RouteTable>, ErrorCode> {
        match self
            .call_as(
                ctx,
                ec2::routing::Action::DescribeRouteTables {
                    route_table_ids: ids.iter().map(|s| s.to_string()).collect(),
                    filters,
                    page: Page::default(),
                },
            )
            .await?
        {
            ec2::routing::Response::DescribeRouteTables { tables, .. } => Ok(tables),
            r => panic!("{r:?}"),
        }
    }
    async fn tables(&self, filters: Vec<Filter>) -> Vec<RouteTable> {
        self.tables_as(&self.ctx, &[], filters).await.unwrap()
    }
    async fn gateways_as(
        &self,
        ctx: &Ctx,
        ids: &[&str],
        filters: Vec<Filter>,
    ) -> Result<Vec<InternetGateway>, ErrorCode> {
        match self
            .call_as(
                ctx,
                ec2::routing::Action::DescribeInternetGateways {
                    internet_gateway_ids: ids.iter().map(|s| s.to_string()).collect(),
                    filters,
                    page: Page::default(),
                },
            )
            .await?
        {
            ec2::routing::Response::DescribeInternetGateways { gateways, .. } => Ok(gateways),
            r => panic!("{r:?}"),
        }
    }
    async fn vpcs(&self, filters: Vec<Filter>) -> Vec<Vpc> {
        match self
            .ok(ec2::vpcs::Action::DescribeVpcs {
                vpc_ids: vec![],
                filters,
                page: Page::default(),
            })
            .await
        {
            ec2::vpcs::Response::DescribeVpcs { vpcs, .. } => vpcs,
            r => panic!("{r:?}"),
        }
    }
    async fn subnets(&self, filters: Vec<Filter>) -> Vec<Subnet> {
        match self
            .ok(ec2::vpcs::Action::DescribeSubnets {
                subnet_ids: vec![],
                filters,
                page: Page::default(),
            })
            .await
        {
            ec2::vpcs::Response::DescribeSubnets { subnets, .. } => subnets,
            r => panic!("{r:?}"),
        }
    }
    fn internet_routed(&self) -> std::collections::HashSet<String> {
        self.cloud
            .store
            .read(|c| c.routing().internet_routed_subnets())
            .unwrap()
    }
    /// Launch one instance (it stays pending: there is no host) into `subnet`.
    async fn launch(&self, subnet: &str) -> String {
        let sys = self.cloud.system_account_sync().unwrap();
        let image = self
            .cloud
            .register_image_sync(
                &sys,
                NewImage {
                    name: format!("img-{subnet}"),
                    description: "test".into(),
                    login_user: "admin".into(),
                    root_size_gib: 8,
                    rootfs: Some("/images/x".into()),
                    state: "available".parse().unwrap(),
                    public: true,
                    owner_alias: Some("gureum".into()),
                    source: "recipe:x".into(),
                    source_instance_id: None,
                    source_image_id: None,
                    tags: vec![],
                },
            )
            .unwrap();
        let req = RunInstances {
            image_id: image.clone(),
            instance_type: Some("t2.micro".into()),
            min_count: 1,
            max_count: 1,
            subnet_id: Some(subnet.into()),
            fingerprint: format!("ImageId={image}&Subnet={subnet}"),
            ..Default::default()
        };
        match self
            .ok(ec2::instances::Action::RunInstances(Box::new(req)))
            .await
        {
            ec2::instances::Response::RunInstances { reservation, .. } => {
                reservation.instances[0].id.clone()
            }
            r => panic!("{r:?}"),
        }
    }
}

#[tokio::test]
async fn default_vpc_has_an_attached_gateway_and_a_main_table_routing_to_it() {
    let w = w();
    let vpc = &w.vpcs(vec![f("is-default", &["true"])]).await[0];
    let gws = w
        .gateways_as(&w.ctx, &[], vec![f("attachment.vpc-id", &[&vpc.id])])
        .await
        .unwrap();
    assert_eq!(gws.len(), 1);
    let tables = w.tables(vec![f("vpc-id", &[&vpc.id])]).await;
    assert_eq!(tables.len(), 1);
    let t = &tables[0];
    assert!(t.associations[0].main && t.associations[0].id.starts_with("rtbassoc-"));
    assert_eq!(t.routes[0].gateway_id, "local");
    assert_eq!(t.routes[0].destination_cidr_block, "172.31.0.0/16");
    assert_eq!(t.routes[1].destination_cidr_block, "0.0.0.0/0");
    assert_eq!(t.routes[1].gateway_id, gws[0].id);
    assert_eq!(t.routes[1].state, "active");
    // Every default subnet's public addresses work.
    assert_eq!(w.internet_routed().len(), 3);
    // As on AWS, the default VPC resolves DNS hostnames.
    match w
        .ok(ec2::vpcs::Action::DescribeVpcAttribute {
            vpc_id: vpc.id.clone(),
            attribute: VpcAttribute::EnableDnsHostnames,
        })
        .await
    {
        ec2::vpcs::Response::DescribeVpcAttribute { value, .. } => assert!(value),
        _ => panic!(),
    }
    // Ensuring again creates nothing more.
    w.vpcs(vec![]).await;
    assert_eq!(w.gateways_as(&w.ctx, &[], vec![]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn old_default_vpcs_are_repaired_once() {
    let w = w();
    let vpc = w.vpcs(vec![]).await.remove(0);
    let gw = w.gateways_as(&w.ctx, &[], vec![]).await.unwrap().remove(0);
    let main = w.tables(vec![]).await.remove(0);
    // Make it look like a default VPC from before internet gateways.
    w.cloud
        .store
        .write(|tx| {
            tx.resources().delete(&w.ctx.account_id, &gw.id)?;
            tx.resources().delete(&w.ctx.account_id, &main.id)?;
            tx.resources()
                .delete(&w.ctx.account_id, &main.associations[0].id)?;
            tx.vpcs()
                .set_vpc_flag(&vpc.id, gureum_store::vpcs::VpcFlag::InternetReady, false)?;
            Ok::<_, gureum_store::StoreError>(())
        })
        .unwrap();
    assert!(w.internet_routed().is_empty());
    assert_eq!(w.cloud.repair_default_vpcs_sync().unwrap(), 1);
    assert_eq!(w.internet_routed().len(), 3);
    assert_eq!(w.cloud.repair_default_vpcs_sync().unwrap(), 0);
    // A gateway the user detaches later stays detached.
    let gw = w.gateways_as(&w.ctx, &[], vec![]).await.unwrap().remove(0);
    w.detach(&gw.id, &vpc.id).await.unwrap();
    w.vpcs(vec![]).await;
    let gws = w.gateways_as(&w.ctx, &[], vec![]).await.unwrap();
    assert_eq!(gws.len(), 1);
    assert_eq!(gws[0].vpc_id, None);
    let t = w.tables(vec![]).await.remove(0);
    assert_eq!(t.routes[1].state, "blackhole");
    assert!(w.internet_routed().is_empty());
}

#[tokio::test]
async fn create_vpc_makes_main_table_and_default_group() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    assert_eq!(v.cidr, "10.0.0.0/16");
    assert!(!v.is_default);
    assert_eq!(v.tags[0].value, "test");
    let t = w.tables(vec![f("vpc-id", &[&v.id])]).await;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].routes.len(), 1);
    assert_eq!(t[0].routes[0].origin, "CreateRouteTable");
    assert!(t[0].associations[0].main);
    let groups = match w
        .ok(ec2::security_groups::Action::DescribeSecurityGroups {
            group_ids: vec![],
            group_names: vec![],
            filters: vec![f("vpc-id", &[&v.id])],
            page: Page::default(),
        })
        .await
    {
        ec2::security_groups::Response::DescribeSecurityGroups { groups, .. } => groups,
        _ => panic!(),
    };
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "default");
    // Tags and filters.
    assert_eq!(w.vpcs(vec![f("tag:Name", &["test"])]).await.len(), 1);
    // A new VPC has no gateway: its subnets are not internet-routed.
    let s = w.subnet(&v.id, "10.0.1.0/24").await.unwrap();
    assert!(!w.internet_routed().contains(&s.id));
}

#[tokio::test]
async fn create_vpc_errors() {
    let w = w();
    let mk = |cidr: &str| ec2::vpcs::Action::CreateVpc {
        cidr_block: cidr.into(),
        instance_tenancy: Tenancy::Default,
        tag_specifications: vec![],
    };
    assert_eq!(w.err(mk("10.0.0.0/8")).await, ErrorCode::InvalidVpcRange);
    assert_eq!(w.err(mk("10.0.0.0/29")).await, ErrorCode::InvalidVpcRange);
    assert_eq!(w.err(mk("127.0.0.0/16")).await, ErrorCode::InvalidVpcRange);
    assert_eq!(w.err(mk("banana")).await, ErrorCode::InvalidParameterValue);
    assert_eq!(
        w.err(ec2::vpcs::Action::CreateVpc {
            cidr_block: "10.0.0.0/16".into(),
            instance_tenancy: Tenancy::Default,
            tag_specifications: name_tag("subnet", "x"),
        })
        .await,
        ErrorCode::InvalidParameterValue
    );
    // Quota: 5 VPCs, the default one included.
    for i in 0..4 {
        w.vpc(&format!("10.{i}.0.0/16")).await;
    }
    assert_eq!(w.err(mk("10.9.0.0/16")).await, ErrorCode::VpcLimitExceeded);
}

#[tokio::test]
async fn vpc_attributes() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    let get = |attribute| ec2::vpcs::Action::DescribeVpcAttribute {
        vpc_id: v.id.clone(),
        attribute,
    };
    match w.ok(get(VpcAttribute::EnableDnsHostnames)).await {
        ec2::vpcs::Response::DescribeVpcAttribute {
            value,
            vpc_id,
            attribute,
        } => {
            assert!(!value);
            assert_eq!(vpc_id, v.id);
            assert_eq!(attribute, "enableDnsHostnames");
        }
        _ => panic!(),
    }
    w.ok(ec2::vpcs::Action::ModifyVpcAttribute {
        vpc_id: v.id.clone(),
        attribute: VpcAttribute::EnableDnsHostnames,
        value: true,
    })
    .await;
    match w.ok(get(VpcAttribute::EnableDnsHostnames)).await {
        ec2::vpcs::Response::DescribeVpcAttribute { value, .. } => assert!(value),
        _ => panic!(),
    }
    match w.ok(get(VpcAttribute::EnableDnsSupport)).await {
        ec2::vpcs::Response::DescribeVpcAttribute { value, .. } => assert!(value),
        _ => panic!(),
    }
    assert_eq!(
        w.err(ec2::vpcs::Action::ModifyVpcAttribute {
            vpc_id: v.id.clone(),
            attribute: VpcAttribute::EnableNetworkAddressUsageMetrics,
            value: true,
        })
        .await,
        ErrorCode::UnsupportedOperation
    );
    assert_eq!(
        w.err(ec2::vpcs::Action::DescribeVpcAttribute {
            vpc_id: "vpc-zz".into(),
            attribute: VpcAttribute::EnableDnsSupport
        })
        .await,
        ErrorCode::InvalidVpcIDMalformed
    );
    assert_eq!(
        w.err(ec2::vpcs::Action::ModifyVpcAttribute {
            vpc_id: "vpc-0123456789abcdef0".into(),
            attribute: VpcAttribute::EnableDnsSupport,
            value: false,
        })
        .await,
        ErrorCode::InvalidVpcIDNotFound
    );
}

#[tokio::test]
async fn subnets_create_modify_delete() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    let s = w.subnet(&v.id, "10.0.1.0/24").await.unwrap();
    assert_eq!(s.availability_zone, "us-east-1a");
    assert!(!s.map_public_ip_on_launch);
    assert!(!s.default_for_az);
    assert_eq!(s.available_ip_address_count, 251);
    assert_eq!(
        w.subnet(&v.id, "10.0.1.128/25").await.unwrap_err(),
        ErrorCode::InvalidSubnetConflict
    );
    assert_eq!(
        w.subnet(&v.id, "10.0.0.0/15").await.unwrap_err(),
        ErrorCode::InvalidSubnetRange
    );
    assert_eq!(
        w.subnet(&v.id, "10.1.0.0/24").await.unwrap_err(),
        ErrorCode::InvalidSubnetRange
    );
    assert_eq!(
        w.subnet(&v.id, "10.0.2.0/29").await.unwrap_err(),
        ErrorCode::InvalidSubnetRange
    );
    assert_eq!(
        w.subnet("vpc-0123456789abcdef0", "10.0.2.0/24")
            .await
            .unwrap_err(),
        ErrorCode::InvalidVpcIDNotFound
    );
    // A zone by id; unknown zones.
    let by_id = match w
        .ok(ec2::vpcs::Action::CreateSubnet {
            vpc_id: v.id.clone(),
            cidr_block: "10.0.2.0/24".into(),
            availability_zone: None,
            availability_zone_id: Some("use1-az2".into()),
            tag_specifications: name_tag("subnet", "b"),
        })
        .await
    {
        ec2::vpcs::Response::CreateSubnet(s) => s,
        _ => panic!(),
    };
    assert_eq!(by_id.availability_zone_id, "use1-az2");
    assert_eq!(
        w.err(ec2::vpcs::Action::CreateSubnet {
            vpc_id: v.id.clone(),
            cidr_block: "10.0.3.0/24".into(),
            availability_zone: Some("mars-1a".into()),
            availability_zone_id: None,
            tag_specifications: vec![],
        })
        .await,
        ErrorCode::InvalidParameterValue
    );
    // Subnets in the default VPC's free space are allowed.
    w.subnet(
        &w.vpcs(vec![f("is-default", &["true"])]).await[0].id,
        "172.31.48.0/20",
    )
    .await
    .unwrap();
    assert_eq!(w.subnets(vec![f("vpc-id", &[&v.id])]).await.len(), 2);
    assert_eq!(w.subnets(vec![f("tag:Name", &["b"])]).await.len(), 1);

    w.ok(ec2::vpcs::Action::ModifySubnetAttribute {
        subnet_id: s.id.clone(),
        map_public_ip_on_launch: Some(true),
    })
    .await;
    assert_eq!(
        w.subnets(vec![
            f("map-public-ip-on-launch", &["true"]),
            f("vpc-id", &[&v.id])
        ])
        .await
        .len(),
        1
    );
    assert_eq!(
        w.err(ec2::vpcs::Action::ModifySubnetAttribute {
            subnet_id: "subnet-nope".into(),
            map_public_ip_on_launch: Some(true),
        })
        .await,
        ErrorCode::InvalidSubnetIDMalformed
    );
    // The VPC can't go while it has subnets.
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteVpc {
            vpc_id: v.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );
    // An instance keeps its subnet (and VPC) alive.
    let i = w.launch(&s.id).await;
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteSubnet {
            subnet_id: s.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );
    w.ok(ec2::instances::Action::TerminateInstances {
        instance_ids: vec![i],
    })
    .await;
    w.cloud
        .store
        .write(|tx| {
            for r in tx.instances().all()? {
                let ended = Some(r.state_since);
                tx.instances().transition(
                    &r.id,
                    r.generation,
                    InstanceState::Terminated,
                    None,
                    None,
                    ended,
                    r.state_since,
                )?;
            }
            Ok::<_, gureum_store::StoreError>(())
        })
        .unwrap();
    w.ok(ec2::vpcs::Action::DeleteSubnet {
        subnet_id: s.id.clone(),
    })
    .await;
    w.ok(ec2::vpcs::Action::DeleteSubnet {
        subnet_id: by_id.id.clone(),
    })
    .await;
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteSubnet {
            subnet_id: s.id.clone()
        })
        .await,
        ErrorCode::InvalidSubnetIDNotFound
    );
    w.ok(ec2::vpcs::Action::DeleteVpc {
        vpc_id: v.id.clone(),
    })
    .await;
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteVpc {
            vpc_id: v.id.clone()
        })
        .await,
        ErrorCode::InvalidVpcIDNotFound
    );
    // The main route table and the default group went with it.
    assert_eq!(w.tables(vec![f("vpc-id", &[&v.id])]).await.len(), 0);
}

#[tokio::test]
async fn default_vpc_and_subnets_stay() {
    let w = w();
    let v = &w.vpcs(vec![]).await[0];
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteVpc {
            vpc_id: v.id.clone()
        })
        .await,
        ErrorCode::OperationNotPermitted
    );
    let s = &w.subnets(vec![]).await[0];
    assert!(s.map_public_ip_on_launch);
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteSubnet {
            subnet_id: s.id.clone()
        })
        .await,
        ErrorCode::OperationNotPermitted
    );
}

#[tokio::test]
async fn delete_vpc_dependencies() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    // An attached gateway.
    let g = w.igw().await;
    w.attach(&g.id, &v.id).await.unwrap();
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteVpc {
            vpc_id: v.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );
    w.detach(&g.id, &v.id).await.unwrap();
    // A non-main route table.
    let t = w.rtb(&v.id).await;
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteVpc {
            vpc_id: v.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );
    w.ok(ec2::routing::Action::DeleteRouteTable {
        route_table_id: t.id.clone(),
    })
    .await;
    // A non-default security group.
    let sg = match w
        .ok(ec2::security_groups::Action::CreateSecurityGroup {
            group_name: "web".into(),
            description: "web".into(),
            vpc_id: Some(v.id.clone()),
            tag_specifications: vec![],
        })
        .await
    {
        ec2::security_groups::Response::CreateSecurityGroup { group_id, .. } => group_id,
        _ => panic!(),
    };
    assert_eq!(
        w.err(ec2::vpcs::Action::DeleteVpc {
            vpc_id: v.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );
    w.ok(ec2::security_groups::Action::DeleteSecurityGroup {
        group_id: Some(sg),
        group_name: None,
    })
    .await;
    w.ok(ec2::vpcs::Action::DeleteVpc {
        vpc_id: v.id.clone(),
    })
    .await;
    // No registry row of the VPC's group, its rules or its main table is left.
    let db = gureum_store::SqliteStore::open(&w._dir.path().join("state.db")).unwrap();
    let left = db.count_for_tests(
                "SELECT count(*) FROM resources WHERE kind IN ('route-table', 'route-table-association', 'security-group') \
                 OR (kind = 'security-group-rule' AND id IN (SELECT r.id FROM security_group_rules r \
                     JOIN security_groups g ON g.id = r.group_id WHERE g.name = 'default'))",
    );
    // The default VPC's: default group with 2 rules, main table, main association.
    assert_eq!(left, 5);
    // No rule of the deleted VPC's default group is left in the registry (the one orphan is
    // the `web` group's egress rule, which DeleteSecurityGroup leaves today).
    let orphans = db.count_for_tests(
        "SELECT count(*) FROM resources WHERE kind = 'security-group-rule' \
                 AND id NOT IN (SELECT id FROM security_group_rules)",
    );
    assert!(orphans <= 1, "{orphans}");
}

#[tokio::test]
async fn internet_gateways_attach_detach_delete() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    let v2 = w.vpc("10.1.0.0/16").await;
    let g = w.igw().await;
    assert_eq!(g.vpc_id, None);
    assert_eq!(g.tags[0].value, "gw");
    w.attach(&g.id, &v.id).await.unwrap();
    assert_eq!(
        w.attach(&g.id, &v.id).await.unwrap_err(),
        ErrorCode::ResourceAlreadyAssociated
    );
    assert_eq!(
        w.attach(&g.id, &v2.id).await.unwrap_err(),
        ErrorCode::ResourceAlreadyAssociated
    );
    let g2 = w.igw().await;
    assert_eq!(
        w.attach(&g2.id, &v.id).await.unwrap_err(),
        ErrorCode::ResourceAlreadyAssociated
    );
    assert_eq!(
        w.detach(&g2.id, &v.id).await.unwrap_err(),
        ErrorCode::GatewayNotAttached
    );
    assert_eq!(
        w.detach(&g.id, &v2.id).await.unwrap_err(),
        ErrorCode::GatewayNotAttached
    );
    assert_eq!(
        w.attach("igw-0123456789abcdef0", &v.id).await.unwrap_err(),
        ErrorCode::InvalidInternetGatewayIDNotFound
    );
    assert_eq!(
        w.attach("igw-xyz", &v.id).await.unwrap_err(),
        ErrorCode::InvalidInternetGatewayIdMalformed
    );
    assert_eq!(
        w.attach(&g2.id, "vpc-0123456789abcdef0").await.unwrap_err(),
        ErrorCode::InvalidVpcIDNotFound
    );

    // Describe with filters.
    let attached = w
        .gateways_as(
            &w.ctx,
            &[],
            vec![
                f("attachment.vpc-id", &[&v.id]),
                f("attachment.state", &["available"]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0].id, g.id);
    let by_id = w.gateways_as(&w.ctx, &[&g2.id], vec![]).await.unwrap();
    assert_eq!(by_id[0].vpc_id, None);
    assert_eq!(
        w.gateways_as(&w.ctx, &["igw-0123456789abcdef0"], vec![])
            .await
            .unwrap_err(),
        ErrorCode::InvalidInternetGatewayIDNotFound
    );
    assert_eq!(
        w.gateways_as(&w.ctx, &[], vec![f("tag:Name", &["gw"])])
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        w.gateways_as(&w.ctx, &[], vec![f("bogus", &["x"])])
            .await
            .unwrap_err(),
        ErrorCode::InvalidParameterValue
    );

    // Another account sees none of it.
    let bob = testing::other(&w.cloud, "bob");
    assert_eq!(
        w.gateways_as(&bob, &[&g.id], vec![]).await.unwrap_err(),
        ErrorCode::InvalidInternetGatewayIDNotFound
    );
    assert_eq!(w.gateways_as(&bob, &[], vec![]).await.unwrap().len(), 1); // its default VPC's
    assert_eq!(
        w.call_as(
            &bob,
            ec2::routing::Action::DeleteInternetGateway {
                internet_gateway_id: g2.id.clone()
            }
        )
        .await
        .unwrap_err(),
        ErrorCode::InvalidInternetGatewayIDNotFound
    );

    assert_eq!(
        w.err(ec2::routing::Action::DeleteInternetGateway {
            internet_gateway_id: g.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );
    w.detach(&g.id, &v.id).await.unwrap();
    w.ok(ec2::routing::Action::DeleteInternetGateway {
        internet_gateway_id: g.id.clone(),
    })
    .await;
    assert_eq!(
        w.err(ec2::routing::Action::DeleteInternetGateway {
            internet_gateway_id: g.id.clone()
        })
        .await,
        ErrorCode::InvalidInternetGatewayIDNotFound
    );
    // Quota: 5 per region, the default VPC's included (default, g2, +3).
    for _ in 0..3 {
        w.igw().await;
    }
    assert_eq!(
        w.err(ec2::routing::Action::CreateInternetGateway {
            tag_specifications: vec![]
        })
        .await,
        ErrorCode::InternetGatewayLimitExceeded
    );
}

#[tokio::test]
async fn detach_refused_while_public_addresses_are_mapped() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    let s = w.subnet(&v.id, "10.0.1.0/24").await.unwrap();
    let g = w.igw().await;
    w.attach(&g.id, &v.id).await.unwrap();
    let i = w.launch(&s.id).await;
    w.cloud
        .store
        .write(|tx| {
            tx.instances().set_public_ip(&i, "127.100.0.9", 0)?;
            Ok::<_, gureum_store::StoreError>(())
        })
        .unwrap();
    assert_eq!(
        w.detach(&g.id, &v.id).await.unwrap_err(),
        ErrorCode::DependencyViolation
    );
}

#[tokio::test]
async fn routes_and_associations() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    let s = w.subnet(&v.id, "10.0.1.0/24").await.unwrap();
    let s2 = w.subnet(&v.id, "10.0.2.0/24").await.unwrap();
    let g = w.igw().await;
    let t = w.rtb(&v.id).await;
    assert_eq!(t.routes.len(), 1);
    assert!(t.associations.is_empty());
    assert_eq!(t.tags[0].value, "public");

    // A gateway of no network / another network.
    assert_eq!(
        w.route(false, &t.id, "0.0.0.0/0", &g.id).await.unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    let other = w.vpc("10.1.0.0/16").await;
    let g_other = w.igw().await;
    w.attach(&g_other.id, &other.id).await.unwrap();
    assert_eq!(
        w.route(false, &t.id, "0.0.0.0/0", &g_other.id)
            .await
            .unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        w.route(false, &t.id, "0.0.0.0/0", "igw-0123456789abcdef0")
            .await
            .unwrap_err(),
        ErrorCode::InvalidGatewayIDNotFound
    );
    assert_eq!(
        w.route(false, "rtb-nope", "0.0.0.0/0", &g.id)
            .await
            .unwrap_err(),
        ErrorCode::InvalidRouteTableIdMalformed
    );
    assert_eq!(
        w.route(false, "rtb-0123456789abcdef0", "0.0.0.0/0", &g.id)
            .await
            .unwrap_err(),
        ErrorCode::InvalidRouteTableIDNotFound
    );
    w.attach(&g.id, &v.id).await.unwrap();
    // Inside the VPC's CIDR: the local route's.
    assert_eq!(
        w.route(false, &t.id, "10.0.5.0/24", &g.id)
            .await
            .unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        w.route(true, &t.id, "0.0.0.0/0", &g.id).await.unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    w.route(false, &t.id, "0.0.0.0/0", &g.id).await.unwrap();
    assert_eq!(
        w.route(false, &t.id, "0.0.0.0/0", &g.id).await.unwrap_err(),
        ErrorCode::RouteAlreadyExists
    );
    w.route(true, &t.id, "0.0.0.0/0", &g.id).await.unwrap();

    // Not associated yet: the subnet uses the main table (no default route).
    assert!(!w.internet_routed().contains(&s.id));
    let a = w.associate(&t.id, &s.id).await.unwrap();
    assert!(a.starts_with("rtbassoc-"));
    assert!(w.internet_routed().contains(&s.id));
    assert!(!w.internet_routed().contains(&s2.id));
    assert_eq!(
        w.associate(&t.id, &s.id).await.unwrap_err(),
        ErrorCode::ResourceAlreadyAssociated
    );
    let default_subnet = &w.subnets(vec![f("default-for-az", &["true"])]).await[0];
    assert_eq!(
        w.associate(&t.id, &default_subnet.id).await.unwrap_err(),
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        w.associate(&t.id, "subnet-0123456789abcdef0")
            .await
            .unwrap_err(),
        ErrorCode::InvalidSubnetIDNotFound
    );

    // Describe with filters.
    let by = |n: &str, v: &str| vec![f(n, &[v])];
    assert_eq!(
        w.tables(by("association.subnet-id", &s.id)).await[0].id,
        t.id
    );
    assert_eq!(
        w.tables(by("association.route-table-association-id", &a))
            .await[0]
            .id,
        t.id
    );
    assert_eq!(w.tables(by("route.gateway-id", &g.id)).await[0].id, t.id);
    assert_eq!(
        w.tables(by("route.destination-cidr-block", "0.0.0.0/0"))
            .await
            .len(),
        2
    ); // + default VPC's
    assert_eq!(w.tables(by("tag:Name", "public")).await.len(), 1);
    let mains = w
        .tables(vec![
            f("association.main", &["true"]),
            f("vpc-id", &[&v.id]),
        ])
        .await;
    assert_eq!(mains.len(), 1);
    let main = &mains[0];
    assert_ne!(main.id, t.id);
    assert_eq!(
        w.tables(by("association.route-table-id", &main.id))
            .await
            .len(),
        1
    );
    assert_eq!(
        w.tables_as(&w.ctx, &["rtb-0123456789abcdef0"], vec![])
            .await
            .unwrap_err(),
        ErrorCode::InvalidRouteTableIDNotFound
    );
    assert_eq!(
        w.tables_as(&w.ctx, &["rtb-x"], vec![]).await.unwrap_err(),
        ErrorCode::InvalidRouteTableIdMalformed
    );
    let bob = testing::other(&w.cloud, "bob");
    assert_eq!(
        w.tables_as(&bob, &[&t.id], vec![]).await.unwrap_err(),
        ErrorCode::InvalidRouteTableIDNotFound
    );
    assert_eq!(
        w.call_as(
            &bob,
            ec2::routing::Action::AssociateRouteTable {
                route_table_id: t.id.clone(),
                subnet_id: s2.id.clone()
            }
        )
        .await
        .unwrap_err(),
        ErrorCode::InvalidRouteTableIDNotFound
    );

    // Detached gateway: blackhole, and no longer internet-routed.
    assert!(
        gureum_ec2::Response::from(w.detach(&g.id, &v.id).await.unwrap())
            .render("DetachInternetGateway", "r")
            .contains("<return>true</return>")
    );
    let tt = &w.tables(by("route-table-id", &t.id)).await[0];
    assert_eq!(tt.routes[1].state, "blackhole");
    assert_eq!(w.tables(by("route.state", "blackhole")).await.len(), 1);
    assert!(!w.internet_routed().contains(&s.id));
    w.attach(&g.id, &v.id).await.unwrap();
    assert!(w.internet_routed().contains(&s.id));

    // Tables in use can't be deleted; the main one never.
    assert_eq!(
        w.err(ec2::routing::Action::DeleteRouteTable {
            route_table_id: t.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );
    assert_eq!(
        w.err(ec2::routing::Action::DeleteRouteTable {
            route_table_id: main.id.clone()
        })
        .await,
        ErrorCode::DependencyViolation
    );

    // Replace the subnet's association: back to the main table.
    let a2 = match w
        .ok(ec2::routing::Action::ReplaceRouteTableAssociation {
            association_id: a.clone(),
            route_table_id: main.id.clone(),
        })
        .await
    {
        ec2::routing::Response::RouteTableAssociated {
            association_id,
            replaced: true,
        } => association_id,
        _ => panic!(),
    };
    assert_ne!(a2, a);
    assert!(!w.internet_routed().contains(&s.id));
    assert_eq!(
        w.err(ec2::routing::Action::DisassociateRouteTable {
            association_id: a.clone()
        })
        .await,
        ErrorCode::InvalidAssociationIDNotFound
    );
    w.ok(ec2::routing::Action::DisassociateRouteTable { association_id: a2 })
        .await;

    // Make the public table main: every subnet without an association follows it.
    let main_assoc = main.associations[0].id.clone();
    assert_eq!(
        w.err(ec2::routing::Action::DisassociateRouteTable {
            association_id: main_assoc.clone()
        })
        .await,
        ErrorCode::InvalidParameterValue
    );
    let new_main = match w
        .ok(ec2::routing::Action::ReplaceRouteTableAssociation {
            association_id: main_assoc.clone(),
            route_table_id: t.id.clone(),
        })
        .await
    {
        ec2::routing::Response::RouteTableAssociated { association_id, .. } => association_id,
        _ => panic!(),
    };
    assert!(w.internet_routed().contains(&s.id) && w.internet_routed().contains(&s2.id));
    let now_main = &w
        .tables(vec![
            f("association.main", &["true"]),
            f("vpc-id", &[&v.id]),
        ])
        .await[0];
    assert_eq!(now_main.id, t.id);
    assert_eq!(now_main.associations[0].id, new_main);
    // The old main table can go now.
    w.ok(ec2::routing::Action::DeleteRouteTable {
        route_table_id: main.id.clone(),
    })
    .await;
    assert_eq!(
        w.err(ec2::routing::Action::ReplaceRouteTableAssociation {
            association_id: new_main.clone(),
            route_table_id: main.id.clone()
        })
        .await,
        ErrorCode::InvalidRouteTableIDNotFound
    );
    let other_main = &w
        .tables(vec![
            f("association.main", &["true"]),
            f("vpc-id", &[&other.id]),
        ])
        .await[0];
    assert_eq!(
        w.err(ec2::routing::Action::ReplaceRouteTableAssociation {
            association_id: new_main.clone(),
            route_table_id: other_main.id.clone()
        })
        .await,
        ErrorCode::InvalidParameterValue
    );

    // Routes go.
    assert_eq!(
        w.err(ec2::routing::Action::DeleteRoute {
            route_table_id: t.id.clone(),
            destination_cidr_block: "10.0.0.0/16".into()
        })
        .await,
        ErrorCode::InvalidParameterValue
    );
    w.ok(ec2::routing::Action::DeleteRoute {
        route_table_id: t.id.clone(),
        destination_cidr_block: "0.0.0.0/0".into(),
    })
    .await;
    assert_eq!(
        w.err(ec2::routing::Action::DeleteRoute {
            route_table_id: t.id.clone(),
            destination_cidr_block: "0.0.0.0/0".into()
        })
        .await,
        ErrorCode::InvalidRouteNotFound
    );
    assert!(!w.internet_routed().contains(&s.id));
}

#[tokio::test]
async fn deleting_a_subnet_drops_its_association() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    let s = w.subnet(&v.id, "10.0.1.0/24").await.unwrap();
    let t = w.rtb(&v.id).await;
    let a = w.associate(&t.id, &s.id).await.unwrap();
    w.ok(ec2::vpcs::Action::DeleteSubnet {
        subnet_id: s.id.clone(),
    })
    .await;
    assert!(w.tables(vec![f("route-table-id", &[&t.id])]).await[0]
        .associations
        .is_empty());
    assert_eq!(
        w.err(ec2::routing::Action::DisassociateRouteTable { association_id: a })
            .await,
        ErrorCode::InvalidAssociationIDNotFound
    );
    w.ok(ec2::routing::Action::DeleteRouteTable {
        route_table_id: t.id.clone(),
    })
    .await;
    assert_eq!(
        w.err(ec2::routing::Action::DeleteRouteTable {
            route_table_id: t.id.clone()
        })
        .await,
        ErrorCode::InvalidRouteTableIDNotFound
    );
}

#[tokio::test]
async fn new_resources_are_taggable() {
    let w = w();
    let v = w.vpc("10.0.0.0/16").await;
    let g = w.igw().await;
    let t = w.rtb(&v.id).await;
    let s = w.subnet(&v.id, "10.0.1.0/24").await.unwrap();
    let a = w.associate(&t.id, &s.id).await.unwrap();
    w.ok(ec2::tags::Action::CreateTags {
        resources: vec![v.id.clone(), g.id.clone(), t.id.clone(), s.id.clone(), a],
        tags: vec![Tag {
            key: "env".into(),
            value: "dev".into(),
        }],
    })
    .await;
    assert_eq!(w.tables(vec![f("tag:env", &["dev"])]).await.len(), 1);
    assert_eq!(
        w.gateways_as(&w.ctx, &[], vec![f("tag:env", &["dev"])])
            .await
            .unwrap()
            .len(),
        1
    );
    match w
        .ok(ec2::tags::Action::DescribeTags {
            filters: vec![f("resource-type", &["internet-gateway", "route-table"])],
            page: Page::default(),
        })
        .await
    {
        ec2::tags::Response::DescribeTags { tags, .. } => assert_eq!(tags.len(), 4),
        _ => panic!(),
    }
}
