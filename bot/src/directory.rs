//! The staff directory: who may ask, which school's policies answer them, and
//! how each channel knows them (Matrix id, email addresses). From the config's
//! `[[staff]]` entries and/or a CSV file (`name,school,role,matrix,email`,
//! several addresses separated by `;`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaffEntry {
    pub name: String,
    pub school: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub matrix: Option<String>,
    #[serde(default)]
    pub email: Vec<String>,
    /// How they want acknowledgement nudges: "email" or "matrix" (default:
    /// email when they have an address, else Matrix).
    #[serde(default)]
    pub prefer: Option<String>,
    /// The name of their line manager (another entry of the same school),
    /// who hears when they leave nudges unanswered.
    #[serde(default)]
    pub line_manager: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaffMember {
    /// `school:name-slug`, what the audit log records.
    pub id: String,
    pub name: String,
    pub school: String,
    pub role: String,
    pub matrix: Option<String>,
    pub emails: Vec<String>,
    pub prefer: Option<String>,
    /// Their line manager's id.
    pub line_manager: Option<String>,
}

#[derive(Debug, Default)]
pub struct Directory {
    members: Vec<StaffMember>,
    by_email: HashMap<String, usize>,
    by_matrix: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

/// A member of staff's id: their school and a slug of their name, so a
/// line manager named in an entry is found by the same rule.
fn staff_id(school: &str, name: &str) -> String {
    format!("{school}:{}", policybot_index::text::slug(name))
}

impl Directory {
    /// Builds the directory, refusing duplicates and unknown schools so a typo
    /// in the staff list is found when the bot starts, not when someone asks.
    pub fn new(entries: Vec<StaffEntry>, schools: &[&str]) -> Result<Directory> {
        let mut d = Directory::default();
        for e in entries {
            let who = format!("staff entry '{}'", e.name);
            if e.name.trim().is_empty() {
                bail!("a staff entry has no name");
            }
            if !schools.contains(&e.school.as_str()) {
                bail!(
                    "{who}: unknown school '{}' (configured: {})",
                    e.school,
                    schools.join(", ")
                );
            }
            let id = staff_id(&e.school, &e.name);
            let index = d.members.len();
            if d.by_id.insert(id.clone(), index).is_some() {
                bail!("{who}: listed twice for school '{}'", e.school);
            }
            let emails: Vec<String> = e
                .email
                .iter()
                .map(|a| a.trim().to_lowercase())
                .filter(|a| !a.is_empty())
                .collect();
            for a in &emails {
                if !a.contains('@') {
                    bail!("{who}: '{a}' is not an email address");
                }
                if d.by_email.insert(a.clone(), index).is_some() {
                    bail!("{who}: the address {a} belongs to two staff entries");
                }
            }
            let matrix = e.matrix.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
            if let Some(p) = e.prefer.as_deref().filter(|p| !matches!(*p, "email" | "matrix")) {
                bail!("{who}: prefer = '{p}': use \"email\" or \"matrix\"");
            }
            if let Some(m) = &matrix {
                if !(m.starts_with('@') && m.contains(':')) {
                    bail!("{who}: '{m}' is not a Matrix user id (@name:server)");
                }
                if d.by_matrix.insert(m.clone(), index).is_some() {
                    bail!("{who}: the Matrix id {m} belongs to two staff entries");
                }
            }
            d.members.push(StaffMember {
                id,
                name: e.name,
                school: e.school,
                role: e.role,
                matrix,
                emails,
                prefer: e.prefer,
                // The name for now; made an id once everyone is known.
                line_manager: e.line_manager.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()),
            });
        }
        for i in 0..d.members.len() {
            let Some(name) = d.members[i].line_manager.clone() else {
                continue;
            };
            let id = staff_id(&d.members[i].school, &name);
            if !d.by_id.contains_key(&id) || id == d.members[i].id {
                bail!(
                    "staff entry '{}': line_manager '{name}' is not another member of staff of school '{}'",
                    d.members[i].name,
                    d.members[i].school
                );
            }
            d.members[i].line_manager = Some(id);
        }
        Ok(d)
    }

    pub fn by_id(&self, id: &str) -> Option<&StaffMember> {
        self.by_id.get(id).map(|&i| &self.members[i])
    }

    /// Reads `name,school,role,matrix,email[,prefer,line_manager]` rows (with a header line).
    pub fn read_csv(path: &Path) -> Result<Vec<StaffEntry>> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_path(path)
            .with_context(|| format!("reading staff list {}", path.display()))?;
        let mut out = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
            let field = |n: usize| row.get(n).unwrap_or("").to_owned();
            out.push(StaffEntry {
                name: field(0),
                school: field(1),
                role: field(2),
                matrix: Some(field(3)).filter(|m| !m.is_empty()),
                email: field(4)
                    .split(';')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
                prefer: Some(field(5)).filter(|p| !p.is_empty()),
                line_manager: Some(field(6)).filter(|m| !m.is_empty()),
            });
        }
        Ok(out)
    }

    pub fn by_email(&self, address: &str) -> Option<&StaffMember> {
        self.by_email
            .get(&address.trim().to_lowercase())
            .map(|&i| &self.members[i])
    }

    pub fn by_matrix(&self, user_id: &str) -> Option<&StaffMember> {
        self.by_matrix.get(user_id.trim()).map(|&i| &self.members[i])
    }

    pub fn members(&self) -> &[StaffMember] {
        &self.members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, school: &str, email: &str, matrix: Option<&str>) -> StaffEntry {
        StaffEntry {
            name: name.into(),
            school: school.into(),
            role: String::new(),
            matrix: matrix.map(Into::into),
            email: vec![email.into()],
            prefer: None,
            line_manager: None,
        }
    }

    #[test]
    fn line_managers_are_other_staff_of_the_same_school() {
        let mut tom = entry("Tom Okafor", "oak", "tom@oak.example", None);
        tom.line_manager = Some("Amira Shah".into());
        let amira = entry("Amira Shah", "oak", "amira@oak.example", None);
        let d = Directory::new(vec![tom.clone(), amira.clone()], &["oak"]).unwrap();
        assert_eq!(
            d.by_id("oak:tom-okafor").unwrap().line_manager.as_deref(),
            Some("oak:amira-shah")
        );
        tom.line_manager = Some("Nobody".into());
        let e = Directory::new(vec![tom, amira], &["oak"]).unwrap_err().to_string();
        assert!(
            e.contains("line_manager 'Nobody' is not another member of staff"),
            "{e}"
        );
    }

    #[test]
    fn finds_staff_by_address_and_matrix_id() {
        let d = Directory::new(
            vec![entry(
                "Priya Raman",
                "oakfield",
                "P.Raman@Oakfield.example",
                Some("@priya:oakfield.example"),
            )],
            &["oakfield"],
        )
        .unwrap();
        let m = d.by_email("p.raman@oakfield.example").unwrap();
        assert_eq!(m.id, "oakfield:priya-raman");
        assert_eq!(d.by_matrix("@priya:oakfield.example").unwrap().name, "Priya Raman");
        assert!(d.by_email("someone@else.example").is_none());
    }

    #[test]
    fn reads_a_staff_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staff.csv");
        std::fs::write(
            &path,
            "name,school,role,matrix,email\nTom Okafor, oakfield ,DSL,@tom:oakfield.example,t.okafor@oakfield.example; tom@home.example\nAmira Shah,oakfield,Teacher,,a.shah@oakfield.example\n",
        )
        .unwrap();
        let entries = Directory::read_csv(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].email, vec!["t.okafor@oakfield.example", "tom@home.example"]);
        assert_eq!(entries[1].matrix, None);
        let d = Directory::new(entries, &["oakfield"]).unwrap();
        assert_eq!(d.by_email("tom@home.example").unwrap().name, "Tom Okafor");
    }

    #[test]
    fn mistakes_in_the_list_are_errors() {
        assert!(Directory::new(vec![entry("A", "nowhere", "a@x.example", None)], &["oakfield"]).is_err());
        assert!(Directory::new(vec![entry("A", "oakfield", "not-an-address", None)], &["oakfield"]).is_err());
        let twice = vec![
            entry("A", "oakfield", "a@x.example", None),
            entry("B", "oakfield", "A@x.example", None),
        ];
        assert!(Directory::new(twice, &["oakfield"]).is_err());
        assert!(
            Directory::new(
                vec![entry("A", "oakfield", "a@x.example", Some("alice"))],
                &["oakfield"]
            )
            .is_err()
        );
    }
}
