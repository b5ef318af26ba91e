//! Choosing the next token, with the grammar as a hard constraint.
//!
//! Greedy decoding first takes the most likely token and asks the grammar
//! about that one token only; the full vocabulary goes through the grammar
//! only when that token is refused. This is the same shortcut llama.cpp's own
//! sampler uses and keeps constrained decoding close to unconstrained speed.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;

use super::Sampling;

/// Token chooser for one generation.
pub(crate) struct Picker {
    sampling: Sampling,
    grammar: Option<LlamaSampler>,
    random: Option<LlamaSampler>,
}

impl Picker {
    pub(crate) fn new(sampling: Sampling, grammar: Option<LlamaSampler>) -> Self {
        let random = match sampling {
            Sampling::Greedy => None,
            Sampling::Seeded { seed, temperature } => Some(LlamaSampler::chain_simple([
                LlamaSampler::temp(temperature),
                LlamaSampler::dist(seed),
            ])),
        };
        Self {
            sampling,
            grammar,
            random,
        }
    }

    /// The next token from the logits of output `idx`, or `None` when the
    /// grammar allows nothing (a dead end that ends the answer).
    pub(crate) fn pick(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> Option<LlamaToken> {
        match self.sampling {
            Sampling::Greedy => self.pick_greedy(ctx, idx),
            Sampling::Seeded { .. } => self.pick_random(ctx, idx),
        }
    }

    /// Tells the grammar a token was emitted. Only tokens returned by
    /// [`Picker::pick`] may be passed: the grammar already allowed them, and
    /// llama.cpp aborts on a token its grammar cannot accept.
    pub(crate) fn accept(&mut self, token: LlamaToken) {
        if let Some(g) = &mut self.grammar {
            g.accept(token);
        }
        if let Some(r) = &mut self.random {
            r.accept(token);
        }
    }

    fn pick_greedy(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> Option<LlamaToken> {
        let logits = ctx.get_logits_ith(idx);
        let (best, logit) = argmax(logits.iter().copied())?;
        let Some(grammar) = &mut self.grammar else {
            return Some(best);
        };
        let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(best, logit, 0.0)], false);
        grammar.apply(&mut one);
        if one.data.first().is_some_and(|d| d.logit().is_finite()) {
            return Some(best);
        }
        let mut all = ctx.token_data_array_ith(idx);
        grammar.apply(&mut all);
        argmax_data(&all)
    }

    fn pick_random(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> Option<LlamaToken> {
        let mut all = ctx.token_data_array_ith(idx);
        if let Some(g) = &mut self.grammar {
            g.apply(&mut all);
            all.data.retain(|d| d.logit().is_finite());
            all.selected = None;
        }
        if all.data.is_empty() {
            return None;
        }
        let r = self.random.as_mut()?;
        r.apply(&mut all);
        all.selected_token()
    }
}

/// Index and value of the largest finite value; the first one on ties, so
/// the choice is reproducible.
fn argmax(values: impl Iterator<Item = f32>) -> Option<(LlamaToken, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, v) in values.enumerate() {
        if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    let (i, v) = best?;
    Some((LlamaToken::new(i32::try_from(i).ok()?), v))
}

fn argmax_data(all: &LlamaTokenDataArray) -> Option<LlamaToken> {
    let mut best: Option<&LlamaTokenData> = None;
    for d in &all.data {
        if d.logit().is_finite() && best.is_none_or(|b| d.logit() > b.logit()) {
            best = Some(d);
        }
    }
    best.map(LlamaTokenData::id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima_and_skips_non_finite_values() {
        let (t, v) = argmax([1.0, f32::NAN, 3.0, 3.0, f32::INFINITY].into_iter()).unwrap();
        assert_eq!((t, v), (LlamaToken::new(2), 3.0));
    }

    #[test]
    fn argmax_of_only_refused_tokens_is_none() {
        assert!(argmax([f32::NEG_INFINITY, f32::NAN].into_iter()).is_none());
    }

    #[test]
    fn argmax_data_ignores_tokens_the_grammar_refused() {
        let all = LlamaTokenDataArray::new(
            vec![
                LlamaTokenData::new(LlamaToken::new(7), f32::NEG_INFINITY, 0.0),
                LlamaTokenData::new(LlamaToken::new(9), -2.0, 0.0),
                LlamaTokenData::new(LlamaToken::new(4), -5.0, 0.0),
            ],
            false,
        );
        assert_eq!(argmax_data(&all), Some(LlamaToken::new(9)));
    }
}
