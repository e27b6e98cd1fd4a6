//! A saved plan against a fresh look at the same world: what changed since it was made.

use std::collections::BTreeSet;

use super::Plan;

impl Plan {
    /// The differences between this (saved) plan and `fresh`, made now from the same
    /// playbook and probes, one line each: a changed playbook first (and alone), then
    /// each fingerprint that differs, then steps that differ (what the probes add to a
    /// step does not count).
    pub fn stale_against(&self, fresh: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.playbook_sha256 != fresh.playbook_sha256 {
            out.push(format!(
                "the playbook changed: sha256 {} when planned, {} now",
                short(&self.playbook_sha256),
                short(&fresh.playbook_sha256)
            ));
            return out;
        }
        let none = std::collections::BTreeMap::new();
        let prints = |p: &Self| p.probes.as_ref().map_or(&none, |p| &p.fingerprints).clone();
        let (a, b) = (prints(self), prints(fresh));
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            let (was, now) = (a.get(k), b.get(k));
            if was != now {
                let show =
                    |v: Option<&String>| v.map_or_else(|| "(not seen)".to_string(), String::clone);
                out.push(format!(
                    "{k}: {} when planned, {} now",
                    show(was),
                    show(now)
                ));
            }
        }
        if out.is_empty() && self.bare_steps() != fresh.bare_steps() {
            out.push(
                "the steps made from this playbook now differ from the plan's (was it made by another version of boyong?)"
                    .into(),
            );
        }
        out
    }

    /// The plan's steps without what the probes added (found, estimates, now), as JSON.
    fn bare_steps(&self) -> serde_json::Value {
        let mut steps = self.steps.clone();
        for s in &mut steps {
            s.found.clear();
            s.estimate = None;
            for c in &mut s.changes {
                c.now = None;
            }
        }
        serde_json::to_value(steps).unwrap_or_default()
    }
}

fn short(s: &str) -> String {
    s.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Plan;

    /// A plan from the parts a test cares about.
    fn plan(sha: &str, steps: &Value, prints: Option<Value>) -> Plan {
        let mut p = json!({"format": 1, "mode": "live", "app": "a", "description": null,
            "playbook": "a.yml", "playbook_sha256": sha,
            "vendor": {"address": "u@h:22", "auth": "key k", "known_hosts": "kh"},
            "target": "unix:///var/run/docker.sock", "secrets": {}, "steps": steps,
            "summary": {"create": 0, "replace": 0, "remove": 0, "run": 0}});
        if let Some(f) = prints {
            p["probes"] = json!({"at": "t", "seconds": 0.0, "vendor": [], "target": [],
                "problems": [], "fingerprints": f, "disk": []});
        }
        Plan::read(&p.to_string()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn step(name: &str, found: bool) -> Value {
        let mut s = json!({"number": 1, "id": "x", "kind": "exec", "retries": 0, "timeout": null,
            "reads": [], "changes": [{"op": "run", "resource": "command", "place": "vendor",
                "name": name, "details": [], "condition": null, "undo": "none"}],
            "spec": {"id": "x", "retries": 0, "retry_delay": null, "timeout": null,
                "kind": {"exec": {"run": "true", "undo": null, "on": "vendor", "env": {}}}}});
        if found {
            s["found"] = json!(["f"]);
            s["changes"][0]["now"] = json!("absent");
        }
        json!([s])
    }

    #[test]
    fn names_each_changed_fingerprint() {
        let saved = plan(
            "aa",
            &json!([]),
            Some(json!({"target.container.web": "absent", "vendor.host_key": "k1", "x": "same"})),
        );
        let fresh = plan(
            "aa",
            &json!([]),
            Some(
                json!({"target.container.web": "id=1 image=sha256:2", "vendor.host_key": "k1", "x": "same", "new": "y"}),
            ),
        );
        assert_eq!(
            saved.stale_against(&fresh),
            vec![
                "new: (not seen) when planned, y now".to_string(),
                "target.container.web: absent when planned, id=1 image=sha256:2 now".to_string(),
            ]
        );
        assert!(saved.stale_against(&saved).is_empty());
    }

    #[test]
    fn a_changed_playbook_is_named_first() {
        let a = plan("aaaaaaaaaaaaaaaa", &json!([]), None);
        let b = plan("bbbbbbbbbbbbbbbb", &json!([]), None);
        assert_eq!(
            a.stale_against(&b),
            vec!["the playbook changed: sha256 aaaaaaaaaaaa when planned, bbbbbbbbbbbb now"]
        );
    }

    #[test]
    fn probe_annotations_do_not_count_as_step_changes() {
        let a = plan("a", &step("n", false), None);
        let b = plan("a", &step("n", true), None);
        assert!(a.stale_against(&b).is_empty());
        let c = plan("a", &step("m", false), None);
        assert_eq!(a.stale_against(&c).len(), 1);
    }
}
