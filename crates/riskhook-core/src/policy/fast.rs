//! A fast path for the CEL rules policies are mostly made of: signal fields, literals,
//! comparisons, equality, `&&`, `||` and `!`, evaluated straight over [`Signals`].
//!
//! It answers only when CEL's answer is unambiguous: operands of the same kind, or a signal that
//! was not checked (`null`) meeting an operator — equal only to `null`, an error anywhere else,
//! which `&&` and `||` absorb when the other side decides. It says [`Fast::Unsure`] otherwise
//! (mixed numeric kinds, lists, anything it does not model), and the rule goes to the CEL
//! interpreter. So
//! it can only ever agree with the interpreter; a property test holds it to that. It exists
//! because building the interpreter's values and walking its tree cost more than everything
//! else in an assessment.

use cel::common::ast::{Expr, IdedExpr, LiteralValue, operators};

use crate::signals::{SignalValue, Signals, definition};

/// A rule condition compiled for the fast path.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Field(&'static str),
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Eq(Box<Node>, Box<Node>, bool),
    Cmp(Cmp, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value on the fast path.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// A signal that was not checked: CEL's `null`.
    Null,
}

/// What a node comes to.
#[derive(Debug, Clone, Copy)]
enum R<'a> {
    /// A value, certainly.
    V(V<'a>),
    /// Certainly an evaluation error (an operator applied to a `null`).
    Error,
    /// Not modelled here: the interpreter decides.
    Unsure,
}

/// The fast path's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fast {
    /// CEL's result, certainly.
    Is(bool),
    /// Certainly an error or a non-boolean result, because a signal that was not checked
    /// (`null`) reached an operator that takes none: the rule is not evaluated.
    NotEvaluated,
    /// Ask the interpreter.
    Unsure,
}

/// Compiles `expr` if every node is one the fast path models.
pub(super) fn compile(expr: &IdedExpr) -> Option<Node> {
    Some(match &expr.expr {
        Expr::Select(select) if !select.test => {
            let Expr::Ident(group) = &select.operand.expr else {
                return None;
            };
            Node::Field(definition(&format!("{group}.{}", select.field))?.name)
        }
        Expr::Literal(LiteralValue::Boolean(b)) => Node::Bool(**b),
        Expr::Literal(LiteralValue::Int(i)) => Node::Int(**i),
        Expr::Literal(LiteralValue::Double(d)) => Node::Float(**d),
        Expr::Literal(LiteralValue::String(s)) => Node::Str(s.inner().to_owned()),
        Expr::Call(call) if call.target.is_none() => {
            match (call.func_name.as_str(), &call.args[..]) {
                (operators::LOGICAL_NOT, [a]) => Node::Not(Box::new(compile(a)?)),
                (operators::LOGICAL_AND, [a, b]) => {
                    Node::And(Box::new(compile(a)?), Box::new(compile(b)?))
                }
                (operators::LOGICAL_OR, [a, b]) => {
                    Node::Or(Box::new(compile(a)?), Box::new(compile(b)?))
                }
                (operators::EQUALS, [a, b]) => {
                    Node::Eq(Box::new(compile(a)?), Box::new(compile(b)?), false)
                }
                (operators::NOT_EQUALS, [a, b]) => {
                    Node::Eq(Box::new(compile(a)?), Box::new(compile(b)?), true)
                }
                (op, [a, b]) => {
                    let cmp = match op {
                        operators::LESS => Cmp::Lt,
                        operators::LESS_EQUALS => Cmp::Le,
                        operators::GREATER => Cmp::Gt,
                        operators::GREATER_EQUALS => Cmp::Ge,
                        _ => return None,
                    };
                    Node::Cmp(cmp, Box::new(compile(a)?), Box::new(compile(b)?))
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Evaluates a compiled condition.
pub(super) fn eval(node: &Node, signals: &Signals) -> Fast {
    match value(node, signals) {
        R::V(V::Bool(b)) => Fast::Is(b),
        R::V(V::Null) | R::Error => Fast::NotEvaluated,
        R::V(_) | R::Unsure => Fast::Unsure,
    }
}

/// A logical operand: a `null` is an error there (CEL has no `bool && null` overload); another
/// non-boolean is left to the interpreter.
fn logical(r: R<'_>) -> R<'_> {
    match r {
        R::V(V::Null) => R::Error,
        R::V(V::Bool(_)) | R::Error | R::Unsure => r,
        R::V(_) => R::Unsure,
    }
}

fn value<'a>(node: &'a Node, signals: &'a Signals) -> R<'a> {
    R::V(match node {
        Node::Field(name) => match signals.get(name).map(|s| &s.value) {
            None => V::Null,
            Some(SignalValue::Bool(b)) => V::Bool(*b),
            Some(SignalValue::Int(i)) => V::Int(*i),
            Some(SignalValue::Float(f)) => V::Float(*f),
            Some(SignalValue::String(s)) => V::Str(s),
            Some(SignalValue::StringList(_)) => return R::Unsure,
        },
        Node::Bool(b) => V::Bool(*b),
        Node::Int(i) => V::Int(*i),
        Node::Float(f) => V::Float(*f),
        Node::Str(s) => V::Str(s),
        Node::Not(a) => match logical(value(a, signals)) {
            R::V(V::Bool(b)) => V::Bool(!b),
            other => return other,
        },
        // CEL's && and || are commutative over errors: a decisive side wins whatever the
        // other side is (an error included); otherwise an error wins over a value, and what is
        // not modelled stays with the interpreter.
        Node::And(a, b) => match (logical(value(a, signals)), logical(value(b, signals))) {
            (R::V(V::Bool(false)), _) | (_, R::V(V::Bool(false))) => V::Bool(false),
            (R::V(V::Bool(true)), R::V(V::Bool(true))) => V::Bool(true),
            (R::Unsure, _) | (_, R::Unsure) => return R::Unsure,
            _ => return R::Error,
        },
        Node::Or(a, b) => match (logical(value(a, signals)), logical(value(b, signals))) {
            (R::V(V::Bool(true)), _) | (_, R::V(V::Bool(true))) => V::Bool(true),
            (R::V(V::Bool(false)), R::V(V::Bool(false))) => V::Bool(false),
            (R::Unsure, _) | (_, R::Unsure) => return R::Unsure,
            _ => return R::Error,
        },
        Node::Eq(a, b, negate) => {
            let equal = match (value(a, signals), value(b, signals)) {
                (R::Unsure, _) | (_, R::Unsure) => return R::Unsure,
                (R::Error, _) | (_, R::Error) => return R::Error,
                (R::V(x), R::V(y)) => match (x, y) {
                    (V::Bool(x), V::Bool(y)) => x == y,
                    (V::Int(x), V::Int(y)) => x == y,
                    (V::Float(x), V::Float(y)) => x == y,
                    (V::Str(x), V::Str(y)) => x == y,
                    // CEL's equality is defined across types: null equals only null.
                    (V::Null, V::Null) => true,
                    (V::Null, _) | (_, V::Null) => false,
                    _ => return R::Unsure,
                },
            };
            V::Bool(equal != *negate)
        }
        Node::Cmp(cmp, a, b) => {
            let ordering = match (value(a, signals), value(b, signals)) {
                (R::Unsure, _) | (_, R::Unsure) => return R::Unsure,
                (R::Error, _) | (_, R::Error) | (R::V(V::Null), _) | (_, R::V(V::Null)) => {
                    return R::Error;
                }
                (R::V(x), R::V(y)) => match (x, y) {
                    (V::Int(x), V::Int(y)) => x.cmp(&y),
                    (V::Str(x), V::Str(y)) => x.cmp(y),
                    (V::Float(x), V::Float(y)) => match x.partial_cmp(&y) {
                        Some(o) => o,
                        None => return R::Unsure,
                    },
                    _ => return R::Unsure,
                },
            };
            V::Bool(match cmp {
                Cmp::Lt => ordering.is_lt(),
                Cmp::Le => ordering.is_le(),
                Cmp::Gt => ordering.is_gt(),
                Cmp::Ge => ordering.is_ge(),
            })
        }
    })
}
