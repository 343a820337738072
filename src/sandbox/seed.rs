//! The sample tenant every sandbox starts from. Fixed data, fixed timestamps, no
//! randomness, so walkthroughs and tests can name ids.
//!
//! Story: a VPN outage at the Berlin office on 9 March 2026 produced three
//! incidents (ITREQ-3, ITREQ-4, ITREQ-5) tracked by problem PRB-1; change CHG-1
//! (a firmware upgrade) is scheduled for it. Laptop asset 3003 was reassigned to
//! Tomás Rivera in the audit log (event 9008) but its record still names Sofia
//! Alvarez.

use serde_json::{Value, json};

use super::store::{Db, Member, Obj, Problem, Ticket, attachment_view, by_id, obj, text, uint};

/// Builds the seeded tenant.
pub(crate) fn tenant() -> Db {
    let mut db = Db::new();
    db.workspaces = workspaces();
    db.users = users();
    db.members = members();
    db.groups = groups();
    db.categories = categories();
    db.items = items();
    db.forms = forms();
    db.views = views();
    db.priorities = priorities();
    db.templates = templates();
    db.asset_types = asset_types();
    db.attachments = attachments();
    db.assets = assets(&db);
    db.requests = requests(&db);
    db.changes = changes(&db);
    db.problems = vec![problem(&db)];
    db.audit = audit(&db);
    continue_sequences(&mut db);
    db
}

/// Makes every id sequence continue after the seeded records.
fn continue_sequences(db: &mut Db) {
    let tickets = || db.requests.iter().chain(&db.changes);
    let mut highest = vec![
        (
            "request".to_owned(),
            max_id(db.requests.iter().map(|t| &t.rec)),
        ),
        (
            "change".to_owned(),
            max_id(db.changes.iter().map(|t| &t.rec)),
        ),
        ("user".to_owned(), max_id(db.users.iter())),
        ("asset".to_owned(), max_id(db.assets.iter())),
        ("audit".to_owned(), max_id(db.audit.iter())),
        ("attachment".to_owned(), max_id(db.attachments.iter())),
        ("note".to_owned(), max_id(tickets().flat_map(|t| &t.notes))),
    ];
    highest.extend(tickets().filter_map(|t| text(&t.rec, "display_id").and_then(split_display)));
    for (sequence, n) in highest {
        db.bump(&sequence, n);
    }
}

fn max_id<'a>(records: impl Iterator<Item = &'a Obj>) -> u64 {
    records.filter_map(|r| uint(r, "id")).max().unwrap_or(0)
}

/// `ITREQ-12` → (`ITREQ`, 12).
fn split_display(id: &str) -> Option<(String, u64)> {
    let (prefix, n) = id.rsplit_once('-')?;
    Some((prefix.to_owned(), n.parse().ok()?))
}

fn workspaces() -> Vec<Obj> {
    vec![
        obj(json!({
            "id": 1, "name": "IT Service Desk", "request_prefix": "ITREQ",
            "description": "Laptops, accounts, network access and everything else IT",
            "created_at": "2025-11-03T10:00:00Z"
        })),
        obj(json!({
            "id": 2, "name": "People Ops", "request_prefix": "HRREQ",
            "description": "Payroll, leave, onboarding and policy questions",
            "created_at": "2025-11-17T10:00:00Z"
        })),
    ]
}

struct Person {
    id: u64,
    first: &'static str,
    last: &'static str,
    email: &'static str,
    title: &'static str,
    department: &'static str,
    role: &'static str,
}

#[rustfmt::skip]
const PEOPLE: [Person; 8] = [
    Person { id: 101, first: "Dana", last: "Whitfield", email: "dana.whitfield", title: "IT Manager", department: "IT", role: "ADMIN" },
    Person { id: 102, first: "Marcus", last: "Lee", email: "marcus.lee", title: "Service Desk Analyst", department: "IT", role: "AGENT" },
    Person { id: 103, first: "Priya", last: "Raman", email: "priya.raman", title: "Network Engineer", department: "IT", role: "AGENT" },
    Person { id: 104, first: "Sofia", last: "Alvarez", email: "sofia.alvarez", title: "Account Executive", department: "Sales", role: "END_USER" },
    Person { id: 105, first: "James", last: "Okafor", email: "james.okafor", title: "Financial Analyst", department: "Finance", role: "END_USER" },
    Person { id: 106, first: "Hannah", last: "Becker", email: "hannah.becker", title: "People Partner", department: "People", role: "AGENT" },
    Person { id: 107, first: "Tomás", last: "Rivera", email: "tomas.rivera", title: "Software Engineer", department: "Engineering", role: "END_USER" },
    Person { id: 108, first: "Aiko", last: "Tanaka", email: "aiko.tanaka", title: "Product Designer (contractor)", department: "Design", role: "END_USER" },
];

fn users() -> Vec<Obj> {
    PEOPLE
        .iter()
        .map(|p| {
            let external = p.id == 108;
            obj(json!({
                "id": p.id,
                "email": format!("{}@example.com", p.email),
                "first_name": p.first,
                "last_name": p.last,
                "name": format!("{} {}", p.first, p.last),
                "title": p.title,
                "department": p.department,
                "employee_id": (!external).then(|| format!("E{}", p.id + 900)),
                "phone_number": format!("+1 415 555 0{}", p.id),
                "type": if external { "EXTERNAL" } else { "EMPLOYEE" },
                "role": p.role,
                "user_status": if external { "INVITED" } else { "ACTIVE" },
                "created_at": if external { "2026-02-25T16:50:00Z" } else { "2025-11-03T10:05:00Z" },
            }))
        })
        .collect()
}

fn member(workspace_id: u64, user_id: u64, kind: &str, roles: &[&str], joined_at: &str) -> Member {
    Member {
        workspace_id,
        user_id,
        kind: kind.to_owned(),
        org_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        joined_at: joined_at.to_owned(),
    }
}

fn members() -> Vec<Member> {
    let it = "2025-11-03T10:05:00Z";
    let people = "2025-11-17T10:05:00Z";
    vec![
        member(1, 101, "EMPLOYEE", &["IT Admin", "Change Manager"], it),
        member(1, 102, "EMPLOYEE", &["Service Desk Agent"], it),
        member(
            1,
            103,
            "EMPLOYEE",
            &["Network Engineer", "Change Approver"],
            it,
        ),
        member(1, 104, "EMPLOYEE", &[], it),
        member(1, 105, "EMPLOYEE", &[], it),
        member(1, 106, "EMPLOYEE", &[], it),
        member(1, 107, "EMPLOYEE", &[], it),
        member(1, 108, "EXTERNAL", &[], "2026-02-25T16:50:00Z"),
        member(2, 106, "EMPLOYEE", &["People Partner"], people),
        member(2, 104, "EMPLOYEE", &[], people),
        member(2, 105, "EMPLOYEE", &[], people),
        member(2, 107, "EMPLOYEE", &[], people),
    ]
}

fn groups() -> Vec<Obj> {
    vec![
        obj(
            json!({"id": 201, "name": "Service Desk", "workspace_id": 1, "member_ids": [101, 102]}),
        ),
        obj(
            json!({"id": 202, "name": "Network Operations", "workspace_id": 1, "member_ids": [103, 101]}),
        ),
        obj(json!({"id": 203, "name": "People Services", "workspace_id": 2, "member_ids": [106]})),
    ]
}

fn categories() -> Vec<Obj> {
    let c = |id: u64, ws: u64, name: &str, kind: &str, description: &str| {
        obj(
            json!({"id": id, "workspace_id": ws, "name": name, "category_type": kind,
                   "description": description}),
        )
    };
    vec![
        c(
            11,
            1,
            "Hardware",
            "SERVICE_REQUEST",
            "Laptops, monitors, phones and accessories",
        ),
        c(
            12,
            1,
            "Software & Access",
            "ACCESS_MANAGEMENT",
            "Licenses and access to business applications",
        ),
        c(
            13,
            1,
            "Report an issue",
            "INCIDENT",
            "Something is broken or not working",
        ),
        c(
            14,
            2,
            "Payroll & Benefits",
            "SERVICE_REQUEST",
            "Pay, bank details, leave and benefits",
        ),
        c(
            15,
            2,
            "Onboarding & Offboarding",
            "SERVICE_REQUEST",
            "Joiners, movers and leavers",
        ),
    ]
}

fn items() -> Vec<Obj> {
    let i = |id: u64, cat: u64, ws: u64, name: &str, published: bool, form: u64| {
        obj(
            json!({"id": id, "category_id": cat, "workspace_id": ws, "name": name,
                   "description": format!("Request: {name}"), "is_published": published,
                   "form_id": form}),
        )
    };
    vec![
        i(21, 11, 1, "New laptop", true, 53),
        i(22, 11, 1, "Replacement monitor", true, 53),
        i(23, 11, 1, "Mobile phone", true, 53),
        i(24, 12, 1, "Software license", true, 54),
        i(25, 12, 1, "Application access", true, 54),
        i(26, 13, 1, "VPN or network problem", true, 52),
        i(27, 13, 1, "Something is broken", true, 52),
        i(28, 11, 1, "Docking station (pilot)", false, 53),
        i(29, 14, 2, "Update bank details", true, 55),
        i(30, 14, 2, "Leave or policy question", true, 55),
        i(31, 15, 2, "New hire onboarding", true, 55),
        i(32, 15, 2, "Offboarding", false, 55),
    ]
}

fn field(key: &str, label: &str, kind: &str, required: bool) -> Value {
    json!({"key": key, "label": label, "type": kind, "required": required})
}

fn select(key: &str, label: &str, required: bool, options: &[&str]) -> Value {
    json!({"key": key, "label": label, "type": "select", "required": required, "options": options})
}

fn base_fields() -> Vec<Value> {
    vec![
        field("subject", "Subject", "text", true),
        field("description", "Description", "rich_text", false),
        field("requester", "Requester", "user", true),
        select(
            "priority",
            "Priority",
            false,
            &["LOW", "MEDIUM", "HIGH", "URGENT"],
        ),
    ]
}

fn form(
    id: u64,
    ws: u64,
    name: &str,
    kinds: (&str, &str),
    items: &[u64],
    extra: Vec<Value>,
) -> Obj {
    let mut fields = base_fields();
    fields.extend(extra);
    obj(
        json!({"id": id, "workspace_id": ws, "name": name, "request_form_type": kinds.0,
               "request_type": kinds.1, "service_item_ids": items, "fields": fields}),
    )
}

fn forms() -> Vec<Obj> {
    vec![
        form(
            51,
            1,
            "General IT request",
            ("REQUEST", "REQUEST"),
            &[],
            vec![],
        ),
        form(
            52,
            1,
            "Report an incident",
            ("INCIDENT_REQUEST", "INCIDENT"),
            &[26, 27],
            vec![
                select(
                    "impact",
                    "How many people are affected?",
                    true,
                    &["LOW", "MEDIUM", "HIGH"],
                ),
                select(
                    "affected_service",
                    "Affected service",
                    false,
                    &["VPN", "Email", "Wi-Fi", "Laptop", "Other"],
                ),
            ],
        ),
        form(
            53,
            1,
            "Hardware request",
            ("SERVICE_REQUEST", "SERVICE_REQUEST"),
            &[21, 22, 23, 28],
            vec![
                select(
                    "device_type",
                    "Device",
                    true,
                    &["Laptop", "Monitor", "Phone", "Dock"],
                ),
                field("needed_by", "Needed by", "date", false),
                field("shipping_address", "Ship to", "text", false),
            ],
        ),
        form(
            54,
            1,
            "Access request",
            ("SERVICE_REQUEST", "SERVICE_REQUEST"),
            &[24, 25],
            vec![
                field("application", "Application", "text", true),
                select(
                    "access_level",
                    "Access level",
                    true,
                    &["READ", "WRITE", "ADMIN"],
                ),
                field(
                    "business_justification",
                    "Business justification",
                    "text",
                    true,
                ),
            ],
        ),
        form(
            55,
            2,
            "People Ops request",
            ("SERVICE_REQUEST", "SERVICE_REQUEST"),
            &[29, 30, 31, 32],
            vec![
                select(
                    "topic",
                    "Topic",
                    true,
                    &["Payroll", "Leave", "Benefits", "Onboarding", "Offboarding"],
                ),
                field("effective_date", "Effective date", "date", false),
            ],
        ),
        form(
            56,
            1,
            "Problem record",
            ("PROBLEM_REQUEST", "PROBLEM"),
            &[],
            vec![field(
                "root_cause_hypothesis",
                "Root cause hypothesis",
                "text",
                false,
            )],
        ),
    ]
}

fn filter(attribute: &str, operator: &str, values: &[Value]) -> Value {
    let values: Vec<Value> = values.iter().map(|v| json!({"value": v})).collect();
    json!({"attribute": attribute, "operator": operator, "values": values})
}

fn views() -> Vec<Obj> {
    let v = |id: u64, name: &str, filter_name: &str, default: bool, filters: Vec<Value>| {
        obj(
            json!({"id": id, "name": name, "entity_type": "REQUEST", "filter_name": filter_name,
                   "is_default": default, "is_system": true, "filters": filters}),
        )
    };
    vec![
        v(41, "All requests", "all", true, vec![]),
        v(
            42,
            "Open incidents",
            "open_incidents",
            false,
            vec![
                filter("type", "EQUALS", &[json!("INCIDENT")]),
                filter(
                    "status",
                    "IS_ANY_OF",
                    &[json!("OPEN"), json!("IN_PROGRESS"), json!("PENDING")],
                ),
            ],
        ),
        v(
            43,
            "Unassigned",
            "unassigned",
            false,
            vec![
                filter("assignee_id", "IS_NULL", &[]),
                filter(
                    "status",
                    "IS_NOT_ANY_OF",
                    &[json!("RESOLVED"), json!("CLOSED")],
                ),
            ],
        ),
        v(
            44,
            "Assigned to me",
            "my_requests",
            false,
            vec![filter("assignee_id", "EQUALS", &[json!(101)])],
        ),
        v(45, "Trash", "trash", false, vec![]),
    ]
}

fn priorities() -> Vec<Obj> {
    let p = |id: u64, value: &str, label: &str, color: &str, minutes: u64| {
        obj(
            json!({"id": id, "value": value, "label": label, "color": color, "order": id,
                   "first_response_sla_minutes": minutes}),
        )
    };
    vec![
        p(1, "URGENT", "Urgent", "#D92D20", 30),
        p(2, "HIGH", "High", "#F79009", 60),
        p(3, "MEDIUM", "Medium", "#2E90FA", 240),
        p(4, "LOW", "Low", "#667085", 480),
    ]
}

fn templates() -> Vec<Obj> {
    vec![
        obj(json!({"id": 1, "name": "Normal change", "change_type": "NORMAL"})),
        obj(json!({"id": 2, "name": "Emergency change", "change_type": "EMERGENCY"})),
        obj(json!({"id": 3, "name": "Standard: laptop refresh", "change_type": "STANDARD"})),
    ]
}

fn asset_types() -> Vec<Obj> {
    vec![
        obj(json!({"id": 1, "name": "Laptop", "category": "HARDWARE"})),
        obj(json!({"id": 2, "name": "Monitor", "category": "HARDWARE"})),
        obj(json!({"id": 3, "name": "Mobile Phone", "category": "HARDWARE"})),
        obj(json!({"id": 4, "name": "Software License", "category": "SOFTWARE"})),
    ]
}

fn attachments() -> Vec<Obj> {
    vec![obj(json!({
        "id": 4001, "file_name": "chg-1-implementation-plan.pdf",
        "content_type": "application/pdf", "size": 48_213,
        "created_at": "2026-03-10T15:02:00Z"
    }))]
}

/// One seeded asset: (id, type, name, assignee, serial, model, location, source, updated).
type AssetRow = (
    u64,
    u64,
    &'static str,
    Option<u64>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const ASSETS: [AssetRow; 10] = [
    (3001, 1, "LT-0142 Laptop Pro 14", Some(101), "C02FX1AAMD6T", "Pro 14, 32 GB", "San Francisco", "MDM", "2025-11-05T09:00:00Z"),
    (3002, 1, "LT-0157 Laptop Standard 14", Some(102), "7440-HX2K9Q3", "Standard 14, 16 GB", "San Francisco", "MDM", "2025-11-05T09:10:00Z"),
    (3003, 1, "LT-0163 Laptop Air 13", Some(104), "C02GL7BBQ6L4", "Air 13, 16 GB", "Berlin", "MDM", "2026-02-10T11:00:00Z"),
    (3004, 1, "LT-0171 Laptop Ultralight 14", None, "PF-4RT8W2", "Ultralight 14, 32 GB", "San Francisco stockroom", "MDM", "2026-02-20T17:00:00Z"),
    (3005, 2, "MN-0044 27-inch 4K monitor", Some(105), "MON27-0044", "27-inch 4K, USB-C", "San Francisco, desk 4B", "MANUAL", "2026-02-20T16:30:00Z"),
    (3006, 2, "MN-0051 27-inch 4K monitor", None, "MON27-0051", "27-inch 4K, HDMI", "San Francisco stockroom", "MANUAL", "2025-12-01T09:00:00Z"),
    (3007, 3, "PH-0019 Smartphone 128 GB", Some(104), "F2LZ19PHQ1", "Smartphone, 128 GB", "Berlin", "MDM", "2025-12-03T09:00:00Z"),
    (3008, 3, "PH-0023 Smartphone 128 GB", None, "P8-23-0091", "Smartphone, 128 GB", "San Francisco stockroom", "MDM", "2025-12-03T09:05:00Z"),
    (3009, 4, "SW-DSGN-01 Design tool seat", Some(108), "DSGN-****-0001", "Design tool, professional plan", "Cloud", "MANUAL", "2026-02-26T10:00:00Z"),
    (3010, 4, "SW-PDF-04 PDF editor seat", None, "PDF-****-0004", "PDF editor, pro plan", "Cloud", "MANUAL", "2026-01-15T09:00:00Z"),
];

fn assets(db: &Db) -> Vec<Obj> {
    ASSETS
        .iter()
        .map(
            |&(id, type_id, name, assignee, serial, model, location, source, updated)| {
                let form = json!({
                    "name": name, "status": if assignee.is_some() { "IN_USE" } else { "AVAILABLE" },
                    "assigned_to": assignee, "serial_number": serial, "model": model,
                    "location": location, "purchase_date": "2025-10-20",
                });
                let mut rec = obj(json!({"id": id, "asset_type_id": type_id, "source": source,
                                     "image_id": null, "created_at": "2025-11-05T09:00:00Z",
                                     "updated_at": updated}));
                super::assets::apply_form(db, &mut rec, obj(form));
                rec
            },
        )
        .collect()
}

/// One seeded request, in the order its fields appear on the wire.
struct RequestSeed {
    ws: u64,
    n: u64,
    kind: &'static str,
    subject: &'static str,
    description: &'static str,
    status: &'static str,
    priority: &'static str,
    source: &'static str,
    people: (u64, Option<u64>, Option<u64>),
    item: Option<u64>,
    tags: &'static [&'static str],
    times: (&'static str, &'static str),
}

#[rustfmt::skip]
const REQUESTS: [RequestSeed; 12] = [
    RequestSeed { ws: 1, n: 1, kind: "SERVICE_REQUEST", subject: "Laptop for new hire starting March 16",
        description: "<p>Our new People Ops coordinator starts Monday 16 March and needs an Air 13 laptop with the standard image.</p>",
        status: "IN_PROGRESS", priority: "MEDIUM", source: "PORTAL", people: (106, Some(102), Some(201)),
        item: Some(21), tags: &["onboarding"], times: ("2026-03-02T09:15:00Z", "2026-03-04T11:20:00Z") },
    RequestSeed { ws: 1, n: 2, kind: "SERVICE_REQUEST", subject: "Access to the CRM pipeline reports",
        description: "<p>I need read access to the pipeline reports for the Q1 review.</p>",
        status: "RESOLVED", priority: "LOW", source: "SLACK", people: (104, Some(102), Some(201)),
        item: Some(25), tags: &["access"], times: ("2026-02-23T14:02:00Z", "2026-02-24T10:30:00Z") },
    RequestSeed { ws: 1, n: 3, kind: "INCIDENT", subject: "VPN gateway unreachable from Berlin office",
        description: "<p>Since about 07:30 nobody on our floor can reach the VPN gateway. The client says 'gateway unreachable'.</p>",
        status: "OPEN", priority: "HIGH", source: "PORTAL", people: (107, None, Some(202)),
        item: Some(26), tags: &["vpn", "network"], times: ("2026-03-09T07:42:00Z", "2026-03-09T08:20:00Z") },
    RequestSeed { ws: 1, n: 4, kind: "INCIDENT", subject: "Cannot connect to VPN: gateway timed out",
        description: "<p>VPN fails with a timeout when connecting to the Berlin gateway. I have a client call at 10.</p>",
        status: "OPEN", priority: "HIGH", source: "SLACK", people: (104, None, Some(202)),
        item: Some(26), tags: &["vpn"], times: ("2026-03-09T07:55:00Z", "2026-03-09T07:55:00Z") },
    RequestSeed { ws: 1, n: 5, kind: "INCIDENT", subject: "VPN keeps dropping, gateway unreachable since this morning",
        description: "<p>The VPN connects for a minute and then drops; the gateway is unreachable most of the time.</p>",
        status: "OPEN", priority: "HIGH", source: "EMAIL", people: (105, None, Some(202)),
        item: None, tags: &["vpn"], times: ("2026-03-09T08:03:00Z", "2026-03-09T08:03:00Z") },
    RequestSeed { ws: 1, n: 6, kind: "INCIDENT", subject: "External monitor flickering at desk 4B",
        description: "<p>The 27-inch monitor at desk 4B flickers every few seconds.</p>",
        status: "PENDING", priority: "LOW", source: "PORTAL", people: (105, Some(102), Some(201)),
        item: Some(27), tags: &["hardware"], times: ("2026-03-05T13:10:00Z", "2026-03-06T09:00:00Z") },
    RequestSeed { ws: 1, n: 7, kind: "SERVICE_REQUEST", subject: "Design tool seat for a design contractor",
        description: "<p>Aiko Tanaka joins the design team as a contractor and needs a design tool seat.</p>",
        status: "CLOSED", priority: "LOW", source: "PORTAL", people: (106, Some(102), Some(201)),
        item: Some(24), tags: &["license"], times: ("2026-02-25T16:40:00Z", "2026-02-26T10:05:00Z") },
    RequestSeed { ws: 1, n: 8, kind: "INCIDENT", subject: "Mail app keeps prompting for password",
        description: "<p>The mail app asks for my password every few minutes since yesterday's update.</p>",
        status: "IN_PROGRESS", priority: "MEDIUM", source: "TEAMS", people: (106, Some(102), Some(201)),
        item: Some(27), tags: &["email"], times: ("2026-03-10T10:25:00Z", "2026-03-10T11:00:00Z") },
    RequestSeed { ws: 1, n: 9, kind: "SERVICE_REQUEST", subject: "Laptop for new hire (duplicate)",
        description: "<p>Sent twice by mistake, see ITREQ-1.</p>",
        status: "OPEN", priority: "MEDIUM", source: "PORTAL", people: (106, None, Some(201)),
        item: Some(21), tags: &[], times: ("2026-03-02T09:18:00Z", "2026-03-02T09:30:00Z") },
    RequestSeed { ws: 2, n: 1, kind: "SERVICE_REQUEST", subject: "Update bank details for March payroll",
        description: "<p>I changed banks; please use the new account from the March payroll on.</p>",
        status: "IN_PROGRESS", priority: "MEDIUM", source: "PORTAL", people: (105, Some(106), Some(203)),
        item: Some(29), tags: &["payroll"], times: ("2026-03-03T08:45:00Z", "2026-03-04T09:00:00Z") },
    RequestSeed { ws: 2, n: 2, kind: "SERVICE_REQUEST", subject: "Question about the parental leave policy",
        description: "<p>How many weeks of paid leave apply for a birth in June?</p>",
        status: "RESOLVED", priority: "LOW", source: "SLACK", people: (107, Some(106), Some(203)),
        item: Some(30), tags: &["leave"], times: ("2026-02-18T12:00:00Z", "2026-02-19T15:00:00Z") },
    RequestSeed { ws: 2, n: 3, kind: "SERVICE_REQUEST", subject: "Onboarding checklist for Aiko Tanaka (contractor)",
        description: "<p>Contractor onboarding: NDA, equipment and tool access.</p>",
        status: "OPEN", priority: "MEDIUM", source: "PORTAL", people: (106, None, Some(203)),
        item: Some(31), tags: &["onboarding"], times: ("2026-02-24T09:00:00Z", "2026-02-24T09:00:00Z") },
];

/// The seeded request that starts in the trash.
const TRASHED: &str = "ITREQ-9";

fn request(db: &Db, id: u64, s: &RequestSeed) -> Obj {
    let prefix = if s.ws == 1 { "ITREQ" } else { "HRREQ" };
    let display_id = format!("{prefix}-{}", s.n);
    let resolved = matches!(s.status, "RESOLVED" | "CLOSED").then_some(s.times.1);
    let problem = (s.ws == 1 && (3..=5).contains(&s.n)).then_some("PRB-1");
    let mut rec = obj(json!({
        "id": id, "display_id": display_id, "subject": s.subject, "description": s.description,
        "type": s.kind, "status": s.status, "priority": s.priority, "source": s.source,
        "workspace_id": s.ws, "requester_id": s.people.0, "assignee_id": s.people.1,
        "agent_group_id": s.people.2, "service_item_id": s.item, "parent_request_id": null,
        "tags": s.tags, "cc_emails": [], "custom_fields": {}, "external_id": null,
        "attachments": [], "linked_changes": [], "problem_display_id": problem,
        "trashed": display_id == TRASHED, "created_at": s.times.0, "updated_at": s.times.1,
        "resolved_at": resolved,
    }));
    db.hydrate(&mut rec);
    rec
}

fn note(db: &Db, id: u64, author: u64, description: &str, private: bool, at: &str) -> Obj {
    obj(json!({
        "id": id, "description": description, "is_private": private, "source": "PORTAL",
        "author": db.user_ref(Some(author)), "mentions": [], "attachments": [], "created_at": at,
    }))
}

fn requests(db: &Db) -> Vec<Ticket> {
    REQUESTS
        .iter()
        .zip(5001..)
        .map(|(s, id)| {
            let rec = request(db, id, s);
            let notes = match text(&rec, "display_id") {
                Some("ITREQ-1") => vec![note(
                    db,
                    6001,
                    102,
                    "<p>Air 13 laptop taken from stock; imaging tomorrow.</p>",
                    false,
                    "2026-03-03T10:00:00Z",
                )],
                Some("ITREQ-3") => vec![note(
                    db,
                    6002,
                    103,
                    "<p>Gateway vpn-gw-ber-01 fails health checks since 07:30. Investigating.</p>",
                    true,
                    "2026-03-09T08:20:00Z",
                )],
                Some("ITREQ-6") => vec![note(
                    db,
                    6003,
                    102,
                    "<p>Asked James to try another cable; waiting for his reply.</p>",
                    false,
                    "2026-03-06T09:00:00Z",
                )],
                _ => Vec::new(),
            };
            Ticket { rec, notes }
        })
        .collect()
}

fn changes(db: &Db) -> Vec<Ticket> {
    let plan = db.attachments.first().map(attachment_view);
    let mut chg1 = obj(json!({
        "id": 7001, "display_id": "CHG-1", "subject": "Upgrade Berlin VPN gateway firmware to 7.2.4",
        "description": "<p>The vendor advisory for 7.2.4 fixes the IPsec tunnel drops tracked in PRB-1.</p>",
        "change_type": "NORMAL", "status": "SCHEDULED", "priority": "HIGH", "urgency": "MEDIUM",
        "impact": "HIGH", "change_template": 1, "workspace_id": 1, "requester_id": 103,
        "assignee_id": 103, "owner_id": 101, "agent_group_id": 202,
        "planned_change_start_date": "2026-03-14T21:00:00Z",
        "planned_change_completion_date": "2026-03-15T01:00:00Z",
        "tags": ["vpn", "firmware"], "assets": [], "linked_requests": [],
        "attachments": plan.into_iter().collect::<Vec<_>>(), "custom_fields": {"rollback_plan": "Reflash 7.1.9 from the backup partition"},
        "template_fields": {}, "problem_display_id": "PRB-1", "trashed": false,
        "created_at": "2026-03-10T15:00:00Z", "updated_at": "2026-03-11T09:30:00Z",
    }));
    let mut chg2 = obj(json!({
        "id": 7002, "display_id": "CHG-2", "subject": "Quarterly laptop refresh: Finance team",
        "description": "<p>Swap the four oldest Finance laptops; wipe and return the old ones to stock.</p>",
        "change_type": "STANDARD", "status": "COMPLETED", "priority": "LOW", "urgency": "LOW",
        "impact": "LOW", "change_template": 3, "workspace_id": 1, "requester_id": 102,
        "assignee_id": 102, "owner_id": 101, "agent_group_id": 201,
        "planned_change_start_date": "2026-02-16T08:00:00Z",
        "planned_change_completion_date": "2026-02-20T17:00:00Z",
        "tags": ["hardware"], "assets": [db.asset_ref(3004)], "linked_requests": [],
        "attachments": [], "custom_fields": {}, "template_fields": {}, "problem_display_id": null,
        "trashed": false, "created_at": "2026-02-12T10:00:00Z", "updated_at": "2026-02-20T16:45:00Z",
    }));
    db.hydrate(&mut chg1);
    db.hydrate(&mut chg2);
    vec![
        Ticket {
            rec: chg1,
            notes: vec![
                note(
                    db,
                    6004,
                    103,
                    "<p>Implementation plan drafted; rollback is reflashing 7.1.9 from the backup partition.</p>",
                    false,
                    "2026-03-10T15:05:00Z",
                ),
                note(
                    db,
                    6005,
                    101,
                    "<p>CAB approved for the Saturday night window.</p>",
                    false,
                    "2026-03-11T09:20:00Z",
                ),
                note(
                    db,
                    6006,
                    103,
                    "<p>Scheduled. Berlin staff told about the 21:00-01:00 UTC downtime.</p>",
                    false,
                    "2026-03-11T09:30:00Z",
                ),
            ],
        },
        Ticket {
            rec: chg2,
            notes: vec![note(
                db,
                6007,
                102,
                "<p>All four Finance laptops swapped; old devices wiped and back in stock.</p>",
                false,
                "2026-02-20T16:45:00Z",
            )],
        },
    ]
}

fn problem(db: &Db) -> Problem {
    let mut rec = obj(json!({
        "id": 8001, "display_id": "PRB-1", "subject": "Recurring VPN gateway outages at the Berlin office",
        "description": "<p>Third gateway outage this quarter; 9 March took down VPN for about 40 people.</p>",
        "status": "IN_PROGRESS", "priority": "HIGH", "workspace_id": 1, "requester_id": 101,
        "assignee_id": 103, "agent_group_id": 202, "tags": ["vpn"],
        "linked_requests": ["ITREQ-3", "ITREQ-4", "ITREQ-5"],
        "created_at": "2026-03-09T09:00:00Z", "updated_at": "2026-03-09T10:00:00Z",
    }));
    db.hydrate(&mut rec);
    let task = |id: u64, name: &str, due: &str, assignee: u64, status: &str| {
        let mut t = obj(json!({
            "id": id, "problem_display_id": "PRB-1", "name": name, "description": null,
            "due_date": due, "assignee_id": assignee, "status": status,
            "created_at": "2026-03-09T09:05:00Z", "updated_at": "2026-03-09T09:05:00Z",
        }));
        db.hydrate(&mut t);
        t
    };
    Problem {
        rec,
        tasks: vec![
            task(
                801,
                "Collect gateway logs for the 9 March outage",
                "2026-03-12",
                103,
                "IN_PROGRESS",
            ),
            task(
                802,
                "Check firmware 7.2.x release notes for IPsec tunnel bugs",
                "2026-03-13",
                103,
                "OPEN",
            ),
            task(
                803,
                "Send affected users the mobile-hotspot workaround",
                "2026-03-09",
                102,
                "COMPLETE",
            ),
        ],
        form: assessment_form(),
    }
}

/// The fields a problem assessment can hold, and the seeded answers.
fn assessment_form() -> Obj {
    obj(json!({
        "problem_display_id": "PRB-1",
        "fields": [
            field("root_cause", "Root cause", "text", false),
            field("impact_summary", "Impact summary", "text", true),
            {"key": "affected_services", "label": "Affected services", "type": "multi_select",
             "required": false, "options": ["VPN", "Email", "Wi-Fi", "SSO", "Other"]},
            field("workaround", "Workaround", "text", false),
            field("permanent_fix", "Permanent fix", "text", false),
            select("risk_level", "Risk of recurrence", false, &["LOW", "MEDIUM", "HIGH"]),
        ],
        "form_fields": {
            "root_cause": null,
            "impact_summary": "About 40 Berlin staff had no VPN for 3 hours on 9 March; 3 incidents raised.",
            "affected_services": ["VPN"],
            "workaround": "Tether to a mobile hotspot and connect to the Frankfurt gateway.",
            "permanent_fix": null,
            "risk_level": "HIGH",
        },
        "updated_at": "2026-03-09T10:00:00Z",
    }))
}

/// One audit event: (id, at, type, entity type, entity id, actor, description, changes, ip).
type AuditRow = (
    u64,
    &'static str,
    &'static str,
    &'static str,
    u64,
    u64,
    &'static str,
    fn() -> Value,
    Option<&'static str>,
);

fn no_changes() -> Value {
    json!({})
}

#[rustfmt::skip]
const AUDIT: [AuditRow; 12] = [
    (9001, "2026-02-10T11:00:00Z", "ASSET_ASSIGNED", "ASSET", 3003, 102, "Marcus Lee assigned LT-0163 Laptop Air 13 to Sofia Alvarez",
        || json!({"assigned_to": {"old": null, "new": 104}, "status": {"old": "AVAILABLE", "new": "IN_USE"}}), None),
    (9002, "2026-02-15T10:00:00Z", "ROLE_CHANGED", "USER", 106, 101, "Dana Whitfield made Hannah Becker an admin of People Ops",
        || json!({"workspace_id": 2, "org_roles": {"old": ["People Services Agent"], "new": ["People Partner"]}}), None),
    (9003, "2026-02-20T16:30:00Z", "ASSET_ASSIGNED", "ASSET", 3005, 102, "Marcus Lee assigned MN-0044 27-inch 4K monitor to James Okafor",
        || json!({"assigned_to": {"old": null, "new": 105}, "status": {"old": "AVAILABLE", "new": "IN_USE"}}), None),
    (9004, "2026-02-25T16:50:00Z", "USER_CREATED", "USER", 108, 106, "Hannah Becker invited Aiko Tanaka as an external user",
        no_changes, None),
    (9005, "2026-02-26T10:00:00Z", "ASSET_ASSIGNED", "ASSET", 3009, 102, "Marcus Lee assigned SW-DSGN-01 Design tool seat to Aiko Tanaka",
        || json!({"assigned_to": {"old": null, "new": 108}, "status": {"old": "AVAILABLE", "new": "IN_USE"}}), None),
    (9006, "2026-03-02T08:58:00Z", "USER_LOGIN", "USER", 101, 101, "Dana Whitfield signed in with SSO",
        no_changes, Some("10.20.1.15")),
    (9007, "2026-03-05T09:30:00Z", "ROLE_CHANGED", "USER", 103, 101, "Dana Whitfield gave Priya Raman the Change Approver role in IT Service Desk",
        || json!({"workspace_id": 1, "org_roles": {"old": ["Network Engineer"], "new": ["Network Engineer", "Change Approver"]}}), None),
    (9008, "2026-03-06T14:22:00Z", "ASSET_ASSIGNED", "ASSET", 3003, 102, "Marcus Lee reassigned LT-0163 Laptop Air 13 from Sofia Alvarez to Tomás Rivera",
        || json!({"assigned_to": {"old": 104, "new": 107}}), None),
    (9009, "2026-03-09T07:38:00Z", "USER_LOGIN", "USER", 107, 107, "Tomás Rivera signed in with SSO",
        no_changes, Some("10.40.2.31")),
    (9010, "2026-03-09T07:51:00Z", "USER_LOGIN_FAILED", "USER", 104, 104, "Sofia Alvarez could not sign in: VPN session not established",
        no_changes, Some("10.40.2.47")),
    (9011, "2026-03-09T08:15:00Z", "USER_LOGIN", "USER", 103, 103, "Priya Raman signed in with SSO",
        no_changes, Some("10.20.1.33")),
    (9012, "2026-03-10T08:45:00Z", "USER_LOGIN", "USER", 101, 101, "Dana Whitfield signed in with SSO",
        no_changes, Some("10.20.1.15")),
];

fn entity_name(db: &Db, kind: &str, id: u64) -> Value {
    let found = match kind {
        "ASSET" => by_id(&db.assets, id),
        _ => db.user(id),
    };
    found
        .and_then(|r| r.get("name").cloned())
        .unwrap_or(Value::Null)
}

fn audit(db: &Db) -> Vec<Obj> {
    AUDIT
        .iter()
        .map(|&(id, at, event, kind, entity, actor, description, changes, ip)| {
            obj(json!({
                "id": id, "event_type": event, "entity_type": kind, "entity_id": entity,
                "entity_name": entity_name(db, kind, entity), "actor": db.user_ref(Some(actor)),
                "description": description, "changes": changes(), "ip_address": ip, "event_at": at,
            }))
        })
        .collect()
}
