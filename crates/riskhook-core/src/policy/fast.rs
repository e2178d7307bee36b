//! A fast path for the CEL rules policies are mostly made of: signal fields, literals,
//! comparisons, equality, `&&`, `||` and `!`, evaluated straight over [`Signals`].
//!
//! It answers only when CEL's answer is unambiguous — both operands present and of the same
//! kind — and says [`Fast::Unsure`] otherwise (a signal that was not checked, mixed numeric
//! kinds, anything it does not model), in which case the rule goes to the CEL interpreter. So
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
}

/// The fast path's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fast {
    /// CEL's result, certainly.
    Is(bool),
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
        Some(V::Bool(b)) => Fast::Is(b),
        _ => Fast::Unsure,
    }
}

/// `None`: not certain (absent signal, a kind the fast path leaves to CEL, an error).
fn value<'a>(node: &'a Node, signals: &'a Signals) -> Option<V<'a>> {
    Some(match node {
        Node::Field(name) => match &signals.get(name)?.value {
            SignalValue::Bool(b) => V::Bool(*b),
            SignalValue::Int(i) => V::Int(*i),
            SignalValue::Float(f) => V::Float(*f),
            SignalValue::String(s) => V::Str(s),
            SignalValue::StringList(_) => return None,
        },
        Node::Bool(b) => V::Bool(*b),
        Node::Int(i) => V::Int(*i),
        Node::Float(f) => V::Float(*f),
        Node::Str(s) => V::Str(s),
        Node::Not(a) => match value(a, signals)? {
            V::Bool(b) => V::Bool(!b),
            _ => return None,
        },
        // CEL's && and || are commutative over errors: a decisive side wins whatever the
        // other side is; otherwise both must be booleans.
        Node::And(a, b) => {
            let (a, b) = (value(a, signals), value(b, signals));
            match (a, b) {
                (Some(V::Bool(false)), _) | (_, Some(V::Bool(false))) => V::Bool(false),
                (Some(V::Bool(true)), Some(V::Bool(true))) => V::Bool(true),
                _ => return None,
            }
        }
        Node::Or(a, b) => {
            let (a, b) = (value(a, signals), value(b, signals));
            match (a, b) {
                (Some(V::Bool(true)), _) | (_, Some(V::Bool(true))) => V::Bool(true),
                (Some(V::Bool(false)), Some(V::Bool(false))) => V::Bool(false),
                _ => return None,
            }
        }
        Node::Eq(a, b, negate) => {
            let equal = match (value(a, signals)?, value(b, signals)?) {
                (V::Bool(x), V::Bool(y)) => x == y,
                (V::Int(x), V::Int(y)) => x == y,
                (V::Float(x), V::Float(y)) => x == y,
                (V::Str(x), V::Str(y)) => x == y,
                _ => return None,
            };
            V::Bool(equal != *negate)
        }
        Node::Cmp(cmp, a, b) => {
            let ordering = match (value(a, signals)?, value(b, signals)?) {
                (V::Int(x), V::Int(y)) => x.cmp(&y),
                (V::Str(x), V::Str(y)) => x.cmp(y),
                (V::Float(x), V::Float(y)) => x.partial_cmp(&y)?,
                _ => return None,
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
