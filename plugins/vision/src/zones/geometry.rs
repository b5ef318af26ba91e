//! Points in polygons and segments crossing lines, in frame pixels.

/// A point `[x, y]`.
pub type Point = [f64; 2];

/// Whether `p` lies inside `polygon` (even-odd rule; points on an edge may
/// fall either way).
pub fn inside(polygon: &[Point], p: Point) -> bool {
    let mut inside = false;
    let n = polygon.len();
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[(i + n - 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Which side of the line `from -> to` the point is on: positive on the
/// right (image coordinates, y down), negative on the left, zero on it.
pub fn side(from: Point, to: Point, p: Point) -> f64 {
    (to[0] - from[0]) * (p[1] - from[1]) - (to[1] - from[1]) * (p[0] - from[0])
}

/// Whether the movement `a -> b` crosses the segment `from -> to`.
pub fn crosses(from: Point, to: Point, a: Point, b: Point) -> bool {
    let (s1, s2) = (side(from, to, a), side(from, to, b));
    let (s3, s4) = (side(a, b, from), side(a, b, to));
    s1 * s2 < 0.0 && s3 * s4 <= 0.0
}

/// Twice the signed area; zero for degenerate polygons.
pub fn area2(polygon: &[Point]) -> f64 {
    let n = polygon.len();
    (0..n)
        .map(|i| {
            let (a, b) = (polygon[i], polygon[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: [Point; 4] = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];

    #[test]
    fn points_inside_and_outside_a_square() {
        assert!(inside(&SQUARE, [5.0, 5.0]));
        assert!(!inside(&SQUARE, [15.0, 5.0]));
        assert!(!inside(&SQUARE, [5.0, -1.0]));
        assert_eq!(area2(&SQUARE), 200.0);
    }

    #[test]
    fn concave_polygons_exclude_their_notch() {
        let u = [
            [0.0, 0.0],
            [3.0, 0.0],
            [3.0, 3.0],
            [2.0, 3.0],
            [2.0, 1.0],
            [1.0, 1.0],
            [1.0, 3.0],
            [0.0, 3.0],
        ];
        assert!(inside(&u, [0.5, 2.0]));
        assert!(!inside(&u, [1.5, 2.0]));
    }

    #[test]
    fn crossing_needs_both_sides_and_the_segment() {
        let (from, to) = ([0.0, 5.0], [10.0, 5.0]);
        assert!(crosses(from, to, [5.0, 0.0], [5.0, 10.0]));
        assert!(!crosses(from, to, [5.0, 0.0], [5.0, 4.0]));
        assert!(!crosses(from, to, [15.0, 0.0], [15.0, 10.0]));
        // y grows downwards: facing along a line drawn left to right, the
        // upper half of the image is on the left.
        assert!(side(from, to, [5.0, 0.0]) < 0.0 && side(from, to, [5.0, 10.0]) > 0.0);
    }
}
