//! The strong-constraint methods (iEnKS, 4D-Var) against the smoother of a deterministic linear
//! model.

use super::*;

#[test]
fn ienks_and_var4d_match_the_smoother_of_a_deterministic_linear_model() {
    // Strong-constraint methods assume a perfect model: the spring without noise. With a lag
    // covering every observation the iEnKS assimilates all of them into the initial ensemble.
    let lin = Linear::new(0.0, "stride:3@2|select:0", 20);
    let p = lin.problem();
    let exact = lin.smoothed();
    let s = Settings {
        lag: p.times.len(),
        ..settings(2000)
    };
    let ienks = run(Method::Ienks, &s, &p, &|_| {}).unwrap();
    assert_close("ienks", &ienks, &exact, 0.1, Some(0.12));
    // Lag 1 and 10 iterations: windows of one cycle, the fixed-lag smoother of one cycle.
    let s1 = Settings {
        lag: 1,
        ..settings(2000)
    };
    let ienks1 = run(Method::Ienks, &s1, &p, &|_| {}).unwrap();
    assert_close("ienks lag 1", &ienks1, &lin.lagged(1), 0.1, Some(0.12));

    // 4D-Var with B = s0² I and a single observation (its background is static, so only one
    // window is the exact posterior): the whole smoothed trajectory, to rounding.
    let one = Linear::new(0.0, "stride:30@12|select:0", 20);
    let p1 = one.problem();
    let sv = Settings {
        lag: 1,
        background_scale: one.s0.powi(2),
        ..settings(1)
    };
    let var4d = run(Method::Var4d, &sv, &p1, &|_| {}).unwrap();
    let exact1 = one.smoothed();
    for t in 0..20 {
        let d = (var4d.mean(t) - &exact1.0[t]).amax();
        assert!(d < 1e-6, "var4d at state {t}: {d}");
    }
}
