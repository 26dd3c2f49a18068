//! Every threshold of the checks, in one place, each with the reason for its value.
//! Tuned for phone photos in general (see `shared/reference/face-detectors.md` and the test photos),
//! not for particular files.

/// Candidates below this detector score are dropped before suppression. MediaPipe uses 0.5; on the
/// test photos 0.75–0.85 separated frontal faces (weakest 0.88) from turned ones (0.79), so the
/// report counts faces at [`FACE_MIN_SCORE`] and pose decides the rest.
pub const DETECT_MIN_SCORE: f32 = 0.5;
/// Overlap above which two candidates are one face (MediaPipe's value).
pub const NMS_IOU: f32 = 0.3;
/// Second look at each face: a window this many face widths wide (the face then fills about 40%
/// of the detector's input, as in the selfies it was trained on), shrunk to at most this many
/// pixels first.
pub const REFINE_CONTEXT: f32 = 2.5;
pub const REFINE_WINDOW_PX: u32 = 256;
/// The landmark model's window: this many detection-box sides, as MediaPipe's face mesh crops.
pub const MESH_WINDOW: f32 = 1.5;
/// The forehead-to-chin line of the landmark model leans back by this much on a face looking
/// straight at the camera; pitch is reported from it. 0: on the frontal test portraits the
/// pitch spreads evenly about zero's neighbourhood (mean +5°, from camera height as much as from
/// the face), too little to correct for.
pub const PITCH_NEUTRAL_DEG: f32 = 0.0;
/// A face counts when the detector is at least this sure (see [`DETECT_MIN_SCORE`]).
pub const FACE_MIN_SCORE: f32 = 0.8;
/// Another sure face at least this wide, per the applicant's face width, is a second person in the
/// photo whichever way they look (someone beside or just behind the applicant); a passer-by far in
/// the background is smaller and is left to the reviewer.
pub const COMPANION_MIN_WIDTH: f32 = 0.4;

/// When no sure face is at least this share of the image's short side wide (a group or distant
/// photo: at the whole frame's 128 px its faces are a few pixels wide), the detector looks again
/// on tiles this share of the short side wide (at least the detector's own 128 px): a face of
/// about 20 px in a 600 px group photo is then 16 px of the detector's input, which it finds.
pub const TILES_BELOW_FACE: f32 = 0.15;
pub const TILE_SIDE: f32 = 0.3;
pub const TILE_MIN_PX: u32 = 128;
/// Someone beside the applicant (see [`COMPANION_MIN_WIDTH`]) whose face the whole frame is too
/// coarse to see is looked for on tiles along the applicant's rows only when the segmentation
/// shows person there: within this many face widths above or below the face's middle, at least
/// this many face widths to either side of it (the applicant's face spans half a face width
/// each way; hair at the cheeks another third or so), over at least this share of a face's area
/// (face width squared; the smallest companion's face is 0.16 of it, with hair more; long hair
/// and tilted heads measured up to 0.6 on single portraits, someone beside 1.0–1.7).
pub const BESIDE_ROWS: f32 = 0.6;
pub const BESIDE_CLEAR: f32 = 0.9;
pub const BESIDE_MIN_AREA: f32 = 0.1;

// --- Decoding limits -------------------------------------------------------------------------

/// Largest canvas accepted by `check_rgba` (the phone hands over pixels it already holds).
pub const MAX_SOURCE_PIXELS: u64 = 64_000_000;
/// Largest JPEG accepted, from the header, before any pixel is decoded: phones shoot 48–200 MP
/// (200 MP sensors save 16320×12240), and a JPEG decodes at 1/8 scale in the DCT domain, so even
/// those cost a few megapixels to check; a 20000×20000 "bomb" header is refused.
pub const MAX_JPEG_PIXELS: u64 = 204_000_000;
/// PNG has no reduced decode: every pixel is held at full size. Phones save PNG for screenshots
/// (at most about 6 MP) and edited photos (12 MP); 4096×4096 covers both, and a larger PNG photo
/// would not fit the upload limit anyway.
pub const MAX_PNG_PIXELS: u64 = 4096 * 4096;
/// Decoded RGB bytes per file byte above which a source is no photo: camera JPEGs inflate 5–30
/// fold, photographic PNGs 2–5 fold, screenshots of flat UI up to about 100; a one-colour
/// "pixel bomb" inflates thousands of times. Only checked from this decoded size up, so small
/// flat images (icons, tests' swatches) stay readable.
pub const MAX_INFLATE_RATIO: u64 = 200;
pub const INFLATE_CHECK_FROM_BYTES: u64 = 16 * 1024 * 1024;
/// Cap on any decoded buffer (bytes): 64 MP × 3 fits; wasm memory stays well under 1 GB.
pub const MAX_DECODE_BYTES: usize = 200 * 1024 * 1024;
/// Cap on all a decode holds at once (bytes, see `decode::plan`): a JPEG wanted at a scale that
/// would hold more is decoded at the next smaller DCT scale (only when tens of megapixels are
/// wanted in full), so one decode never takes more than this, natively or in wasm.
pub const MAX_DECODE_PEAK_BYTES: u64 = 384 * 1024 * 1024;
/// Uploads above this are refused: larger than any phone JPEG, and the server's upload limit.
pub const MAX_UPLOAD_KB: f32 = 15.0 * 1024.0;

// --- Analysis scale --------------------------------------------------------------------------

/// JPEGs are decoded at the smallest DCT scale whose long side reaches this, then shrunk to
/// [`ANALYSIS_MAX_LONG_SIDE`] (a DCT-scaled JPEG is already within both): the detector sees 128 px and the pixel checks look at the face at
/// about the final photo's size, so more resolution only costs time.
pub const ANALYSIS_MIN_LONG_SIDE: u32 = 800;
pub const ANALYSIS_MAX_LONG_SIDE: u32 = 1600;

// --- Head proportions (BlazeFace box → the standards' measures) ------------------------------

/// The standards' "face width" (cheek to cheek) per detector box width.
pub const FACE_WIDTH_PER_BOX: f32 = 1.0;
/// The box spans about 2.25 eye distances, i.e. 14 cm on an adult: cheek to cheek.
/// Head width including hair and ears (about 16–17 cm) per box width.
pub const HEAD_WIDTH_PER_BOX: f32 = 1.15;
/// Crown (top of the hair) above the eye line, per box width: about 12 cm of skull plus some
/// hair (measured 0.95 on the plain-background test portrait).
pub const CROWN_ABOVE_EYES_PER_BOX: f32 = 0.92;
/// Chin below the eye line, per box width (about 11 cm). Chin to crown is the sum of the two.
pub const CHIN_BELOW_EYES_PER_BOX: f32 = 0.75;

// --- Checks ----------------------------------------------------------------------------------

/// Source pixels per final-photo pixel at the face. Below 1 the final photo is enlarged; below
/// 0.3 the face is under about 60 px wide, too few to resolve eyes and mouth for review.
pub const RESOLUTION_PASS: f32 = 0.8;
pub const RESOLUTION_FAIL: f32 = 0.3;

/// The landmark mesh ends on the upper forehead; the top of the skull (with flat-lying hair) lies
/// about this share of the mesh's forehead-to-chin height above it (head height is about 1.25
/// times the mesh's on an adult; standing hair is cut in the document anyway).
pub const CROWN_ABOVE_MESH_TOP: f32 = 0.25;
/// Framing: the tops of the shoulders (where the neck meets them) lie this far below the chin
/// and this far either side of the face's centre line, per face width (cheek contour to cheek
/// contour; a neck is about half a face wide and, to where the shoulders slope, half a face long). With the crown, the chin
/// and the head's sides they must be in the photo; the background around them need not be (the
/// finished photo fills it).
pub const SHOULDER_TOP_BELOW_CHIN_PER_FACE: f32 = 0.5;
pub const SHOULDER_TOP_SPAN_PER_FACE: f32 = 0.6;
/// How far (face widths) a needed part may seem to lie beyond the edge before the photo is
/// refused: the crown and shoulders are estimated from the face's size, and hair volume and
/// build vary by about this much; within it the check warns.
pub const FRAMING_CUT_TOLERANCE: f32 = 0.1;

/// Eye-line angle (degrees; the landmark mesh's roll, else the detector's eyes). Up to 5° is
/// natural posture; normalisation levels the eyes, and up to 12° that costs nothing visible; more
/// means the head (or camera) is clearly tilted.
pub const TILT_PASS_DEG: f32 = 5.0;
pub const TILT_FAIL_DEG: f32 = 12.0;

/// Head pose from the landmark mesh (degrees; see `landmarks.rs`), pooled over the photo and its
/// mirror. On the frontal shared portraits (photos and photos-bg, and their mirrors) yaw measures
/// 0–11° (a blurred copy 13.5°), pitch −13° to +14° (the camera a little below or above the eyes
/// gives a few degrees either way), while heads turned by a quarter (about 25–35°) measure 28–31°
/// and a turned and lowered one pitch 21°. Up to the pass limits a pose is natural; past the fail
/// limits the head is clearly turned, raised or lowered: no longer counted as a frontal face (the
/// ICAO portrait guidance asks for a head square to the camera; a 20° turn already hides the far
/// ear and cheek contour and a 20° nod shortens the face by 6 % in the document).
pub const YAW_PASS_DEG: f32 = 12.0;
pub const YAW_FAIL_DEG: f32 = 20.0;
pub const PITCH_PASS_DEG: (f32, f32) = (-15.0, 15.0);
pub const PITCH_FAIL_DEG: (f32, f32) = (-20.0, 20.0);

/// Eye opening (lid gap over eye width, the lower eye; see `landmarks.rs`). Open eyes measured
/// 0.16–0.42 on the shared portraits (narrow eyes and a grimace at the low end); a closed lid
/// leaves the mesh's lid points a few percent of the eye width apart. Half-closed warns.
pub const EYES_OPEN_PASS: f32 = 0.12;
pub const EYES_OPEN_FAIL: f32 = 0.08;
/// Expression (warn only): the lip gap over the mouth width, and the mouth's width over the
/// outer eye corners' distance. Closed relaxed mouths measured under 0.06 and 0.57–0.66; smiles
/// showing teeth 0.14–0.23 and 0.72–0.84.
pub const MOUTH_OPEN_MAX: f32 = 0.1;
pub const MOUTH_WIDTH_MAX: f32 = 0.72;

// --- The seed's rules (see `rules.rs`): regions in the face's frame, in eye distances -------

/// Samples per side of a region's grid: enough for a share to move in steps of under 0.5 %.
pub const RULE_SAMPLES: usize = 16;
/// A segmentation value this high counts as the person.
pub const RULE_PERSON: f32 = 0.5;
/// The face's skin is looked for on the cheeks (below the eyes, beside the nose) and the
/// forehead (above the brows, under a fringe's usual reach).
pub const CHEEK_U: (f32, f32) = (0.45, 0.85);
pub const CHEEK_V: (f32, f32) = (0.5, 0.85);
pub const FOREHEAD_U: f32 = 0.35;
pub const FOREHEAD_V: (f32, f32) = (-0.85, -0.55);
/// Eye regions around each eye's centre: the eye, its lids and a lens over them.
pub const EYE_HALF_U: f32 = 0.3;
pub const EYE_HALF_V: f32 = 0.15;
/// The brighter eye region's luma over the skin's. On the good portraits (shared sets, the
/// labelled set, mirrors) it measured 0.5–1.3 (clear glasses included), eyes deep in the shadow
/// of their sockets down to 0.40; sunglasses 0.39 and drawn dark lenses 0.18–0.30. The two overlap,
/// so failing also needs the region to keep under [`LENS_MAX_WARMTH_SHARE`] of the skin's warmth
/// (the sunglasses 0.14, the shadowed eyes 0.22–0.30 and warn); a tinted brown lens keeps its
/// warmth and only warns.
pub const GLASSES_PASS: f32 = 0.5;
pub const GLASSES_FAIL: f32 = 0.42;
pub const LENS_MAX_WARMTH_SHARE: f32 = 0.25;
/// Below this warmth (Cr − Cb) the face shows no skin colour to compare with.
pub const SKIN_MIN_WARMTH: f32 = 15.0;
/// A pixel is skin or lip when at least this share of the skin's warmth.
pub const SKIN_WARMTH_SHARE: f32 = 0.5;
pub const NOSE_HALF_U: f32 = 0.15;
pub const NOSE_HALF_V: f32 = 0.1;
pub const MOUTH_HALF_U: f32 = 0.25;
pub const MOUTH_HALF_V: f32 = 0.1;
pub const CHIN_V: (f32, f32) = (0.15, 0.4);
/// Skin-warm share (the lower of nose tip and the best of upper lip, lips, chin): good portraits
/// measured 0.64–1.0 (beards 0.77–0.90, smiles showing teeth 0.97), masks of every colour but
/// skin's 0–0.2 when the face was found at all.
pub const OCCLUSION_PASS: f32 = 0.5;
pub const OCCLUSION_FAIL: f32 = 0.3;
/// The crown's band, as shares of the mesh's top-to-chin height above its top.
pub const CROWN_HALF_U: f32 = 0.6;
pub const CROWN_V: (f32, f32) = (0.08, 0.3);
/// A crown sample counts as no hair's colour when its chroma is at least this and it is cool
/// (blue, green, purple) or stronger than [`HAIR_MAX_CHROMA`] (no natural or common dyed hair; a
/// bald head's skin measures 30–50). Good portraits measured shares up to 0.41 (hair against a
/// green backdrop the segmentation took in); a grey-blue cap 0.47, a black helmet and black caps
/// nothing: black headwear is not told from black hair.
pub const HAT_MIN_CHROMA: f32 = 12.0;
pub const HAIR_MAX_CHROMA: f32 = 60.0;
pub const HEADWEAR_PASS: f32 = 0.2;
pub const HEADWEAR_FAIL: f32 = 0.5;
/// Shoulders: columns this far either side of the face's centre line, searched from this far
/// below the chin in steps of this much. The search starts well above where the shoulders' tops
/// lie (half a face width, about 1.1 eye distances, below the chin: see
/// [`SHOULDER_TOP_BELOW_CHIN_PER_FACE`]), so a photo that shows a shoulder always reaches it; a
/// photo cut closer under the chin only shows jaw, hair or collar there, which the coarse
/// segmentation calls person. From 0.2 to 0.4 (eleventh session), labelled set: 3 more crops cut
/// under the chin caught, and one portrait ending 0.2–0.3 below its chin with a sliver of jacket
/// at the corners refused (already refused by `framing`); the shared sets' verdicts unchanged.
pub const SHOULDER_U: f32 = 1.6;
pub const SHOULDER_FROM_CHIN: f32 = 0.4;
pub const SHOULDER_STEP: f32 = 0.05;
/// The shoulder line's angle: good portraits measured 0–15.7° (a torso a little turned); the
/// pass limit sits above that, the fail limit where a shoulder is clearly dropped or the body
/// turned. A photo without either shoulder (cut under the chin) fails whatever the angle.
pub const SHOULDERS_PASS_DEG: f32 = 16.0;
pub const SHOULDERS_FAIL_DEG: f32 = 25.0;
/// Ear lobes: from this far inside the cheek contour (at the ears) to this far outside it.
pub const LOBE_U: (f32, f32) = (0.2, 0.15);
pub const JEWEL_ABOVE_SKIN: f32 = 40.0;
pub const JEWEL_MIN_LUMA: f32 = 170.0;
pub const JEWEL_MAX_CHROMA: f32 = 25.0;
/// A spot is at most this many samples across (about 5–10 px on a face 200 px wide).
pub const SPOT_MAX: usize = 2;
/// Share of the lobe region in small bright spots: dangling earrings measured 0.04–0.1, studs
/// 0.01–0.02 (missed), and good portraits up to 0.1 (lit hair strands, a collar's edge): the
/// check only warns, for the reviewer to look.
pub const ACCESSORIES_PASS: f32 = 0.04;

/// Mean face luma (0–255). Well-exposed skin of any tone sits around 90–200.
pub const FACE_LUMA_PASS: (f32, f32) = (80.0, 210.0);
pub const FACE_LUMA_FAIL: (f32, f32) = (55.0, 230.0);
/// A face darker than the fail limit only warns when at least this share of it is this bright:
/// dark skin photographed in good light (mean 54, a tenth of the face at 91 or more on a public
/// portrait) keeps lit parts that a dark photo has none of (the darkened test portraits: at most
/// 51 anywhere on the face).
pub const FACE_LIT_LUMA: u8 = 80;
pub const FACE_LIT_SHARE: f32 = 0.05;
/// Luma treated as clipped, and the share of clipped face pixels that fails.
pub const CLIPPED_LUMA: u8 = 250;
pub const CLIPPED_FAIL: f32 = 0.2;

/// Darker half of the face over the brighter half. Even light gives 0.7–1 (the halves are never
/// identical: hair, a slight turn); a hard shadow across half the face drops to about 0.35.
pub const SHADOW_PASS: f32 = 0.65;
pub const SHADOW_FAIL: f32 = 0.5;

/// Specular glare: near-white (luma ≥ 240, channels within 30) share of the inner face.
pub const SPECULAR_LUMA: u8 = 240;
pub const SPECULAR_MAX_SPREAD: u8 = 30;
/// Clean faces measure under 1%; a flash hot spot on forehead and nose covers several percent.
pub const SPECULAR_PASS: f32 = 0.02;
pub const SPECULAR_FAIL: f32 = 0.08;

/// The face is resampled to this width before measuring sharpness: about the final photo's face.
pub const SHARPNESS_FACE_WIDTH: u32 = 128;
/// Keeps the contrast normalisation from exploding on flat images.
pub const SHARPNESS_STD_FLOOR: f32 = 4.0;
/// In-focus faces measure 0.14–0.3 at this scale; a blur of a few pixels at the final photo's
/// scale (the eyelashes and hair strands gone) drops below 0.08.
pub const SHARPNESS_PASS: f32 = 0.13;
pub const SHARPNESS_FAIL: f32 = 0.08;

/// Background: brightness spread plus weighted mean gradient; a plain wall with a soft gradient
/// stays under the maximum.
pub const BACKGROUND_TEXTURE_WEIGHT: f32 = 2.0;
pub const BACKGROUND_BUSY_MAX: f32 = 30.0;
/// A background darker than this is not "light" (the server can still try to whiten it).
pub const BACKGROUND_MIN_LUMA: f32 = 120.0;

/// Colour: pixels this bright or dark carry no reliable hue; below this chroma a pixel is grey.
pub const COLOUR_LUMA: (u8, u8) = (25, 235);
pub const COLOUR_MIN_CHROMA: f32 = 6.0;
/// Below this share of colourful pixels the photo is greyscale whatever their hues.
pub const COLOUR_MIN_SHARE: f32 = 0.02;
/// Circular spread of hue (degrees). A tinted monochrome (sepia) has one hue and measures 2–3°;
/// colour photos of a single dominant colour (skin, a brown cat) still measure 8° and more.
pub const COLOUR_PASS: f32 = 6.0;
pub const COLOUR_FAIL: f32 = 4.0;

// --- Normalisation (server side) -------------------------------------------------------------

/// Decoded source pixels per final-photo pixel: a little above 1 so the final resampling
/// anti-aliases, while a 12 MP JPEG can still be decoded at 1/4 scale in the DCT domain.
pub const NORMALISE_OVERSAMPLE: f32 = 1.25;
/// Person matte (see `matte.rs`): the guided filter's window radius per face width in the
/// document photo (about 7 px for the ID card's face), and its regularisation on colours in
/// [0, 1]: small enough that hair against a wall moves the edge, large enough that texture inside
/// the backdrop does not.
pub const MATTE_RADIUS_PER_FACE: f32 = 0.035;
pub const MATTE_EPS: f32 = 2e-3;
/// Before the filter, the unsure band is decided again by colour (see `matte::colour_posterior`):
/// the person's and the backdrop's colours are modelled over a window this many face widths
/// across (wide enough to reach sure pixels of both beyond the band: hair, a shoulder, the wall
/// behind them), from the pixels whose coarse probability is within `MATTE_COLOUR_SURE` of 1 or
/// 0 (weight rising to 1 at half that). On `shared/photos-bg` a window of 0.3 face widths
/// gained less against the reference cut-outs, 0.8 lost against IS-Net; a sure margin of 0.2 or
/// 0.1 gained less on both, 0.5 the same.
pub const MATTE_COLOUR_PER_FACE: f32 = 0.5;
pub const MATTE_COLOUR_SURE: f32 = 0.4;
/// Colour variance added to each model (colours in [0, 1]): the camera's noise, so a flat wall
/// does not make every other colour infinitely unlikely.
pub const MATTE_COLOUR_VARIANCE_FLOOR: f32 = 2e-3;
/// The colours change the odds of person against backdrop by at most this factor (e⁴): the
/// segmentation keeps the last word where it is sure.
pub const MATTE_COLOUR_MAX_ODDS: f32 = 54.6;
/// Share of the window that must be sure of each side for the colours to count (less: the
/// models are guesses from a few pixels); the colours' say grows linearly up to it.
pub const MATTE_COLOUR_MIN_SHARE: f32 = 0.1;
/// A coarse probability within this of 0 or 1 is kept as it is: the colours are asked only in
/// the unsure band (on `shared/photos-bg` 2–15 % of the pixels; 0.001 and 0.05 gave the same
/// IoU on every portrait).
pub const MATTE_COLOUR_KEEP: f32 = 0.02;
/// The finished photo's segmentation looks again at a square around the person, this many face
/// widths wide, with the face's middle (`MATTE_WINDOW_FACE_ALONG` of its box down) at
/// `MATTE_WINDOW_FACE_AT` of the square from its top (about the head-and-shoulders to upper-body view portrait models are trained on), and
/// takes the mean with the whole photo's look where the square reaches: the model sees the
/// person larger and undistorted (the whole photo is stretched to its square input), so thin
/// raised arms and strands it loses at the whole photo's scale come back. On `shared/photos-bg`
/// (coarse masks against IS-Net and the reference cut-outs) 6 face widths gained most without
/// losing on any photo: 3–5 helped less, 8 reaches past most photos and changes little.
pub const MATTE_WINDOW_FACES: f32 = 6.0;
pub const MATTE_WINDOW_FACE_ALONG: f32 = 0.4;
pub const MATTE_WINDOW_FACE_AT: f32 = 0.3;
/// The filtered probability maps linearly from this span onto 0–1: below it is backdrop, above
/// it person, and in between the edge stays soft. Its middle (the matte's 0.5) is at 0.45, not
/// 0.5: the selfie model is under-confident along hair and loose strands, which cut-outs by large
/// matting models (IS-Net, U²-Net) count as person; centred at 0.45 the matte agreed better with
/// IS-Net on 9 of the 10 portraits of `shared/photos-bg` (mean IoU 0.9477 → 0.949; 0.40 took more
/// backdrop with it on the one that lost).
pub const MATTE_CURVE: (f32, f32) = (0.15, 0.75);
/// Around the head the curve is lowered by this much ((0.10, 0.70) above the face box's bottom),
/// fading back to `MATTE_CURVE` over this many face widths below it: hair ends in fine strands
/// that the guided filter thins out, and the large matting models (IS-Net, U²-Net) both count
/// that fringe as person, where clothes and shoulders end in a hard edge. On
/// `shared/photos-bg` mean IoU against IS-Net 0.9566 → 0.9577, U²-Net 0.9563 → 0.9582, and
/// where both agree 0.9669 → 0.9684 (0.05: 0.9678, 0.15: 0.9685 but the street portrait's
/// reference cut-out lost 0.002; lowered everywhere it lost 0.001 against both models: the
/// street portrait's grey shoulders took in the road). The boundary half a face height higher
/// or lower and a fade of 0.2 or 1 face width changed the mean by ≤ 0.0002. That was 0.1, chosen
/// on `shared/photos-bg`; 0.05 since the third judging set (README, "A third judging set"): on
/// the portraits it was not chosen on, mean IoU against IS-Net +0.0003 on the deepface 40,
/// +0.0006 on all 44, +0.0008 on the 26 new ones (17 up, 6 down), against `photos-bg`'s −0.0003
/// (−0.0009 against U²-Net, −0.0001 against the reference cut-outs); 0 (no lowering) lost 0.0012
/// on `photos-bg`, 0.15 lost 0.0012–0.0022 on the other two.
pub const MATTE_HAIR_CURVE_SHIFT: f32 = 0.05;
pub const MATTE_HAIR_FADE_PER_FACE: f32 = 0.5;
/// The matte keeps only what joins the face (`matte::keep_subject`), seeded from a square this
/// many face widths either side of the face box's middle: inside the face on any portrait the
/// detector accepts, and more than one pixel so a single odd pixel cannot decide. On the 44
/// unseen press portraits of `serengil/deepface` mean IoU against IS-Net 0.9464 → 0.9479 (a TV
/// logo and a bystander apart from the subject dropped); `shared/photos-bg` unchanged.
pub const MATTE_SUBJECT_SEED_PER_FACE: f32 = 0.1;
/// The second seed of `matte::keep_subject`: the same columns from the face box's bottom down
/// this many face widths (the neck and the top of the chest, inside the document photo), so a
/// body that the matte ever parted from the face at the neck (a line of zero alpha) stays
/// person. On both judging sets the neck always joins them, and every IoU stays the same.
pub const MATTE_SUBJECT_BODY_PER_FACE: f32 = 1.0;
/// A matte value this close to 0 or 1 counts as sure.
pub const MATTE_SURE: f32 = 0.1;
/// Window for the edge-colour decontamination (the local backdrop's and person's colours), per
/// face width.
pub const MATTE_DECONTAMINATE_PER_FACE: f32 = 0.06;
/// The inner face kept exactly as taken: an ellipse around the box's centre at this height
/// (fraction of the box from its top), with these half-axes per box width and height.
pub const MATTE_FACE_CENTRE: f32 = 0.55;
pub const MATTE_FACE_HALF_WIDTH: f32 = 0.32;
pub const MATTE_FACE_HALF_HEIGHT: f32 = 0.38;
/// Below this mean person probability on the inner face the segmentation missed the person:
/// the background is left as taken.
pub const MATTE_MIN_PERSON_AT_FACE: f32 = 0.5;
/// A soft band along the outline wider than this on average (document pixels) means the matte
/// was unsure of a good part of the edge: the report says so.
pub const MATTE_SOFT_EDGE_PX: f32 = 3.0;
/// JPEG quality search bounds: below 30 blocking shows on skin; above 95 only size grows.
pub const JPEG_QUALITY_RANGE: (u8, u8) = (30, 95);
/// Quality of the review copy kept of the original upload.
pub const REVIEW_QUALITY: u8 = 85;

// --- Memory ----------------------------------------------------------------------------------

/// Working memory of one check or normalisation beside its decoded image (analysis copies at
/// most [`ANALYSIS_MAX_LONG_SIDE`] long, network activations, the document photo and its
/// matte), so a caller can budget the whole step from [`crate::decode::peak_bytes`].
pub const WORK_OVERHEAD_BYTES: u64 = 48 * 1024 * 1024;
