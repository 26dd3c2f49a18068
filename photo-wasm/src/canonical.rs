//! One look per model, at a canonical orientation. The models are not mirror-symmetric: a photo
//! and its mirror image would get slightly different answers, and a verdict near a limit could
//! flip. Instead of looking twice (as taken and mirrored) and pooling, each model looks once, at
//! its input as taken or mirrored, whichever way the input's brightness leans: a photo and its
//! mirror image then give the model the very same input, and their answers are mirror images.

use crate::raster::Rgb;
use std::borrow::Cow;
use std::cmp::Ordering;

/// Whether an input of rows `width` pixels wide (`channels` values each) is to be mirrored to
/// reach its canonical orientation. Mirroring the input turns the answer around, so an input and
/// its mirror image never both get `true`; an input that is its own mirror image gets `false`
/// (either way is the same input).
///
/// The criterion is exact, so no rounding can break a tie differently for the two: the
/// horizontal moment of brightness (summed in integers) is made to lean right;
/// when it is zero, the input and its mirror image are compared value by value and the larger
/// one (at the first difference) is taken.
pub fn mirror_to_canonical(values: &[u8], width: usize, channels: usize) -> bool {
    let row = width * channels;
    if row == 0 {
        return false;
    }
    // Brightness summed down each column of values first, then across each pixel's channels
    // (integers: exact in any order). Value by value in u32, the rows add up in vector registers;
    // bands short enough that a u32 cannot overflow, added into u64s (which hold any photo's).
    const BAND_ROWS: usize = (u32::MAX / u8::MAX as u32) as usize;
    let mut columns = vec![0u64; row];
    let mut band_sums = vec![0u32; row];
    for band in values.chunks(row.saturating_mul(BAND_ROWS)) {
        band_sums.fill(0);
        for r in band.chunks_exact(row) {
            for (sum, &v) in band_sums.iter_mut().zip(r) {
                *sum += v as u32;
            }
        }
        for (total, &sum) in columns.iter_mut().zip(&band_sums) {
            *total += sum as u64;
        }
    }
    let moment: i64 = columns
        .chunks_exact(channels)
        .enumerate()
        .map(|(x, sums)| (2 * x as i64 - (width as i64 - 1)) * sums.iter().sum::<u64>() as i64)
        .sum();
    if moment != 0 {
        return moment < 0;
    }
    let first_difference = values
        .chunks_exact(row)
        .flat_map(|r| r.chunks_exact(channels).zip(r.chunks_exact(channels).rev()))
        .flat_map(|(p, q)| p.iter().zip(q))
        .map(|(a, b)| a.cmp(b))
        .find(|o| o.is_ne());
    first_difference == Some(Ordering::Less)
}

/// The rows (`width` pixels of `C` values) mirrored left to right: whole pixels copied in
/// reverse order, a row at a time (a pixel of known size copies in a few moves: several times
/// faster than reversing each pixel's channels in place).
pub fn mirrored<T: Copy, const C: usize>(values: &[T], width: usize) -> Vec<T> {
    let (pixels, _) = values.as_chunks::<C>();
    let mut out = Vec::with_capacity(pixels.len());
    for row in pixels.chunks_exact(width) {
        out.extend(row.iter().rev().copied());
    }
    out.into_flattened()
}

/// `image` in its canonical orientation, and whether that is mirrored. Decided on the picture
/// itself, before any resampling: a photo and its mirror image then reach the very same pixels,
/// whatever a resize's rounding does afterwards.
pub fn image(image: &Rgb) -> (Cow<'_, Rgb>, bool) {
    turned(image, false)
}

/// `image` in its canonical orientation or, when `other`, in the other one (a second look that
/// is still the same for a photo and its mirror image), and whether that is mirrored.
pub fn turned(image: &Rgb, other: bool) -> (Cow<'_, Rgb>, bool) {
    let width = image.width as usize;
    if mirror_to_canonical(&image.data, width, 3) != other {
        let mirrored = Rgb {
            width: image.width,
            height: image.height,
            data: mirrored::<_, 3>(&image.data, width),
        };
        (Cow::Owned(mirrored), true)
    } else {
        (Cow::Borrowed(image), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect()
    }

    /// The input as the model sees it: mirrored when the choice says so.
    fn canonical<const C: usize>(v: &[u8], width: usize) -> (Vec<u8>, bool) {
        let mirror = mirror_to_canonical(v, width, C);
        let seen = if mirror {
            mirrored::<_, C>(v, width)
        } else {
            v.to_vec()
        };
        (seen, mirror)
    }

    #[test]
    fn an_input_and_its_mirror_image_reach_the_same_input() {
        fn both_ways<const C: usize>(width: usize, seed: u64) {
            let v = pseudo_random(width * C * 5, seed);
            let m = mirrored::<_, C>(&v, width);
            let (a, b) = (canonical::<C>(&v, width), canonical::<C>(&m, width));
            assert_eq!(a.0, b.0, "width {width}");
            assert!(
                width == 1 || a.1 != b.1,
                "width {width}: exactly one is mirrored"
            );
        }
        both_ways::<3>(7, 1);
        both_ways::<1>(8, 2);
        both_ways::<3>(16, 3);
        both_ways::<3>(1, 4);
    }

    #[test]
    fn a_tie_in_the_moment_is_broken_the_same_way_for_both() {
        // Weights −3 −1 1 3 across a row of four: 1 3 0 2 has a moment of zero but is not its
        // own mirror image.
        let v = [1u8, 3, 0, 2];
        let m = mirrored::<_, 1>(&v, 4);
        assert_ne!(v.to_vec(), m);
        let (a, b) = (canonical::<1>(&v, 4), canonical::<1>(&m, 4));
        assert_eq!(a.0, b.0);
        assert_ne!(a.1, b.1);
        // A symmetric input is its own mirror image and is left as it is.
        let s = [1u8, 5, 5, 1];
        assert_eq!(canonical::<1>(&s, 4), (s.to_vec(), false));
    }

    #[test]
    fn a_photo_and_its_mirror_image_are_seen_alike() {
        let mut photo = Rgb::new(5, 3);
        photo.data = pseudo_random(5 * 3 * 3, 9);
        let mirror = Rgb {
            data: mirrored::<_, 3>(&photo.data, 5),
            ..photo.clone()
        };
        let (a, b) = (image(&photo), image(&mirror));
        assert_eq!(a.0.data, b.0.data);
        assert_ne!(a.1, b.1);
    }
}
