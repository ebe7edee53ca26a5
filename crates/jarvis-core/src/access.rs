//! Who may do what: the roles of people, the scopes of API tokens, and the
//! separation-of-duties rule that decides when an approval is enough.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Risk, RiskLevel};

/// What a person signed in to the web UI may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the queue, actions, audit log, hosts and policy.
    Viewer,
    /// A viewer who also proposes, approves, denies and rolls back.
    Approver,
    /// An approver who also manages users and tokens.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Approver, Role::Admin];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role: expected viewer, approver or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// What an API token may do. No scope approves: tokens belong to agents and
/// scripts, and approving is a person's act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Reads actions, the audit log, hosts and the policy.
    Read,
    /// Reads, and proposes actions.
    Propose,
}

impl TokenScope {
    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Propose => "propose",
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no token scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a token scope: expected read or propose")]
pub struct UnknownScope(pub String);

impl FromStr for TokenScope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(TokenScope::Read),
            "propose" => Ok(TokenScope::Propose),
            _ => Err(UnknownScope(s.to_owned())),
        }
    }
}

/// Someone acting on Jarvis, as the audit log names them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A person signed in to the web UI.
    User {
        /// The user name.
        name: String,
        /// The user's role.
        role: Role,
    },
    /// An agent or script holding an API token.
    Token {
        /// The token's name.
        name: String,
        /// What it may do.
        scope: TokenScope,
    },
    /// The operator at the gateway's own shell (`jarvis approve`).
    Local {
        /// The account name.
        account: String,
    },
}

impl Principal {
    /// The actor string the audit log records: `user:NAME`, `token:NAME` or
    /// `local:ACCOUNT`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { name, .. } => format!("user:{name}"),
            Principal::Token { name, .. } => format!("token:{name}"),
            Principal::Local { account } => format!("local:{account}"),
        }
    }

    /// Whether it may read the queue, actions, audit log, hosts and policy.
    /// Everyone who got this far may.
    pub fn may_read(&self) -> bool {
        true
    }

    /// Whether it may propose actions.
    pub fn may_propose(&self) -> bool {
        match self {
            Principal::User { role, .. } => *role >= Role::Approver,
            Principal::Token { scope, .. } => *scope == TokenScope::Propose,
            Principal::Local { .. } => true,
        }
    }

    /// Whether it may approve, deny or roll back. A token never may.
    pub fn may_decide(&self) -> bool {
        match self {
            Principal::User { role, .. } => *role >= Role::Approver,
            Principal::Token { .. } => false,
            Principal::Local { .. } => true,
        }
    }

    /// Whether it may manage users and tokens.
    pub fn may_administer(&self) -> bool {
        match self {
            Principal::User { role, .. } => *role == Role::Admin,
            Principal::Token { .. } => false,
            Principal::Local { .. } => true,
        }
    }
}

/// The person behind an actor string: `user:alice` (the web UI) and
/// `local:alice` (the CLI on the gateway) are the same person, `alice`, so
/// switching between them neither lets one approve their own request nor
/// counts twice. Other actors (`token:…`, `planner`) are their own.
pub fn person(actor: &str) -> &str {
    actor
        .strip_prefix("user:")
        .or_else(|| actor.strip_prefix("local:"))
        .unwrap_or(actor)
}

/// One step from an actor to whoever answers for it. What an agent does
/// with a token is the doing of the person who made the token; what a
/// conversation with the planner proposes is the doing of whoever started
/// it (which may itself be a token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behind<'a> {
    /// `chat:ID`: the conversation `ID`, answered for by who started it.
    Conversation(&'a str),
    /// `token:NAME`: the API token `NAME`, answered for by who made it.
    Token(&'a str),
}

impl<'a> Behind<'a> {
    /// What stands behind `actor`, or `None` when the actor answers for
    /// itself (`user:…`, `local:…`, and actors such as `planner`).
    pub fn of(actor: &'a str) -> Option<Behind<'a>> {
        if let Some(id) = actor.strip_prefix(crate::CHAT_PREFIX) {
            Some(Behind::Conversation(id))
        } else {
            actor.strip_prefix("token:").map(Behind::Token)
        }
    }
}

/// How many [`Behind`] steps lead from a requester to the person
/// accountable for it at most: a conversation started by a token made by a
/// person is two. Tokens are made by people (no token may administer), so
/// a longer chain means a damaged record, and the walk stops there.
pub const ACCOUNTABLE_STEPS: usize = 2;

/// Separation of duties. The defaults fit a homelab with one owner: the
/// owner may approve what they asked for, and one approval is enough. A
/// team tightens it to a two-person rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Whether a person may approve an action they proposed themselves.
    pub self_approval: bool,
    /// How many distinct people must approve a critical-risk action.
    pub critical_approvers: u32,
    /// How many distinct people must approve any other action.
    pub approvers: u32,
}

impl Default for ApprovalRule {
    fn default() -> ApprovalRule {
        ApprovalRule {
            self_approval: true,
            critical_approvers: 1,
            approvers: 1,
        }
    }
}

/// Why an approval does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// The approver is the person accountable for the action (they asked
    /// for it, or their token or conversation did) and the rule forbids
    /// approving one's own requests.
    #[error(
        "{approver} may not approve this action: {accountable} is accountable for it (their own request, or their token's or conversation's) and the approval rule forbids approving one's own requests; another approver must decide"
    )]
    OwnRequest {
        /// Who tried.
        approver: String,
        /// Who is accountable for the action.
        accountable: String,
    },
    /// The approver already approved it; another person must add theirs.
    #[error(
        "{approver} already approved this action; it needs {needed} distinct approvers, so someone else must approve too"
    )]
    AlreadyApproved {
        /// Who tried.
        approver: String,
        /// How many distinct approvers it needs.
        needed: u32,
    },
}

/// Where an action stands after an approval was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalProgress {
    /// Enough distinct approvers: the action is approved.
    Complete,
    /// Recorded, and this many more distinct approvers are needed.
    Waiting {
        /// Still needed.
        more: u32,
    },
}

impl ApprovalRule {
    /// How many distinct approvers an action at `risk` needs.
    pub fn needed(&self, risk: Risk) -> u32 {
        let n = if risk.level() == RiskLevel::Critical {
            self.critical_approvers.max(self.approvers)
        } else {
            self.approvers
        };
        n.max(1)
    }

    /// Counts `approver`'s approval of an action that `accountable` answers
    /// for, at `risk`, that `earlier` approvers already approved. Actors
    /// are compared as [`person`]s; `accountable` is the person at the end
    /// of the requester's [`Behind`] chain, never a token or a
    /// conversation, or a two-person rule would count the person behind
    /// them as someone else.
    ///
    /// # Errors
    /// An [`ApprovalRefusal`] when the approval does not count.
    pub fn count(
        &self,
        accountable: &str,
        approver: &str,
        risk: Risk,
        earlier: &[String],
    ) -> Result<ApprovalProgress, ApprovalRefusal> {
        if !self.self_approval && person(accountable) == person(approver) {
            return Err(ApprovalRefusal::OwnRequest {
                approver: approver.to_owned(),
                accountable: accountable.to_owned(),
            });
        }
        let needed = self.needed(risk);
        if earlier.iter().any(|a| person(a) == person(approver)) {
            return Err(ApprovalRefusal::AlreadyApproved {
                approver: approver.to_owned(),
                needed,
            });
        }
        let have = u32::try_from(earlier.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        Ok(if have >= needed {
            ApprovalProgress::Complete
        } else {
            ApprovalProgress::Waiting {
                more: needed - have,
            }
        })
    }

    /// The rule a rollback is approved under, and whether the asker's own
    /// request counts as their approval.
    ///
    /// Under [`RollbackApproval::SameRule`] a rollback waits for approvers
    /// exactly as any action at its risk does. Under
    /// [`RollbackApproval::OneApprover`] one approver is enough, and where
    /// self-approval is allowed the asker is that approver, so a single
    /// owner rolls back in one step. A `forced` rollback (it overwrites
    /// what changed since the action) and a rollback of a rollback (it puts
    /// the change back) always need the full rule: otherwise one person
    /// could get any change back, or undo others' work, alone.
    pub fn for_rollback(
        &self,
        setting: RollbackApproval,
        forced: bool,
        of_rollback: bool,
    ) -> (ApprovalRule, bool) {
        if setting == RollbackApproval::SameRule || forced || of_rollback {
            return (*self, false);
        }
        let one = ApprovalRule {
            approvers: 1,
            critical_approvers: 1,
            ..*self
        };
        (one, self.self_approval)
    }
}

/// How rollbacks are approved (`[approvals] rollback`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackApproval {
    /// As any action at the rollback's risk (the original's, at least).
    #[default]
    SameRule,
    /// One approver; the asker, where self-approval is allowed.
    OneApprover,
}

impl RollbackApproval {
    /// The setting's word in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackApproval::SameRule => "same-rule",
            RollbackApproval::OneApprover => "one-approver",
        }
    }
}

impl fmt::Display for RollbackApproval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no way of approving rollbacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a rollback approval: expected same-rule or one-approver")]
pub struct UnknownRollbackApproval(pub String);

impl FromStr for RollbackApproval {
    type Err = UnknownRollbackApproval;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [RollbackApproval::SameRule, RollbackApproval::OneApprover]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRollbackApproval(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk(n: u32) -> Risk {
        Risk::new(n).expect("valid risk")
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!(Role::Viewer < Role::Approver && Role::Approver < Role::Admin);
        assert!("root".parse::<Role>().is_err());
        assert_eq!("propose".parse::<TokenScope>(), Ok(TokenScope::Propose));
        assert!("approve".parse::<TokenScope>().is_err());
    }

    #[test]
    fn tokens_never_decide() {
        for scope in [TokenScope::Read, TokenScope::Propose] {
            let t = Principal::Token {
                name: "bot".into(),
                scope,
            };
            assert!(!t.may_decide());
            assert!(!t.may_administer());
        }
        let viewer = Principal::User {
            name: "v".into(),
            role: Role::Viewer,
        };
        assert!(!viewer.may_decide() && !viewer.may_propose());
        assert_eq!(viewer.actor(), "user:v");
    }

    #[test]
    fn default_rule_lets_the_owner_approve_alone() {
        let rule = ApprovalRule::default();
        assert_eq!(
            rule.count("user:a", "user:a", risk(95), &[]),
            Ok(ApprovalProgress::Complete)
        );
    }

    #[test]
    fn two_person_rule() {
        let rule = ApprovalRule {
            self_approval: false,
            critical_approvers: 2,
            approvers: 1,
        };
        assert!(matches!(
            rule.count("user:a", "user:a", risk(10), &[]),
            Err(ApprovalRefusal::OwnRequest { .. })
        ));
        assert_eq!(
            rule.count("user:a", "user:b", risk(10), &[]),
            Ok(ApprovalProgress::Complete)
        );
        assert_eq!(
            rule.count("user:a", "user:b", risk(90), &[]),
            Ok(ApprovalProgress::Waiting { more: 1 })
        );
        assert!(matches!(
            rule.count("user:a", "user:b", risk(90), &["user:b".into()]),
            Err(ApprovalRefusal::AlreadyApproved { needed: 2, .. })
        ));
        assert_eq!(
            rule.count("user:a", "user:c", risk(90), &["user:b".into()]),
            Ok(ApprovalProgress::Complete)
        );
        // The same person through the CLI and the web UI is one person.
        assert!(matches!(
            rule.count("local:a", "user:a", risk(10), &[]),
            Err(ApprovalRefusal::OwnRequest { .. })
        ));
        assert!(matches!(
            rule.count("user:x", "local:b", risk(90), &["user:b".into()]),
            Err(ApprovalRefusal::AlreadyApproved { .. })
        ));
        // The refusal names who is accountable, not only who tried.
        let refused = rule
            .count("local:alice", "user:alice", risk(10), &[])
            .expect_err("own request");
        assert!(
            refused
                .to_string()
                .starts_with("user:alice may not approve this action: local:alice is accountable"),
            "{refused}"
        );
    }

    #[test]
    fn what_stands_behind_an_actor() {
        assert_eq!(Behind::of("chat:0192"), Some(Behind::Conversation("0192")));
        assert_eq!(Behind::of("token:bot"), Some(Behind::Token("bot")));
        for own in ["user:alice", "local:root", "planner", "gateway"] {
            assert_eq!(Behind::of(own), None, "{own}");
        }
    }

    #[test]
    fn rollbacks_take_the_full_rule_unless_one_approver_is_set_and_nothing_forces_it() {
        let two = ApprovalRule {
            self_approval: false,
            critical_approvers: 2,
            approvers: 1,
        };
        let owner = ApprovalRule::default();
        let one = |r: ApprovalRule| ApprovalRule {
            approvers: 1,
            critical_approvers: 1,
            ..r
        };
        use RollbackApproval::{OneApprover, SameRule};
        // (rule, setting, forced, of a rollback) -> (rule used, asker counts)
        let table = [
            (owner, SameRule, false, false, (owner, false)),
            (owner, OneApprover, false, false, (owner, true)),
            (owner, OneApprover, true, false, (owner, false)),
            (owner, OneApprover, false, true, (owner, false)),
            (two, SameRule, false, false, (two, false)),
            (two, OneApprover, false, false, (one(two), false)),
            (two, OneApprover, true, false, (two, false)),
            (two, OneApprover, false, true, (two, false)),
        ];
        for (rule, setting, forced, of_rollback, want) in table {
            assert_eq!(
                rule.for_rollback(setting, forced, of_rollback),
                want,
                "{rule:?} {setting} forced={forced} of_rollback={of_rollback}"
            );
        }
        // Under one-approver a critical rollback still needs one other
        // person when self-approval is off.
        let (r, _) = two.for_rollback(OneApprover, false, false);
        assert!(matches!(
            r.count("user:a", "user:a", risk(95), &[]),
            Err(ApprovalRefusal::OwnRequest { .. })
        ));
        assert_eq!(
            r.count("user:a", "user:b", risk(95), &[]),
            Ok(ApprovalProgress::Complete)
        );
        assert_eq!("one-approver".parse(), Ok(OneApprover));
        assert_eq!(RollbackApproval::default(), SameRule);
        assert!("quick".parse::<RollbackApproval>().is_err());
    }
}
